//! Thin entry point: everything lives in the library so tests can call `run()`.
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(respond::run(std::env::args_os()))
}
