//! Thin entry point: everything lives in the library so tests can call `run()`.
use std::process::ExitCode;

/// jemalloc, with the defaults set in `.cargo/config.toml` (one arena, freed pages
/// returned at once, except while the run contains: `memory.rs`): glibc's malloc kept
/// about twice the memory in use resident.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    ExitCode::from(respond::run(std::env::args_os()))
}
