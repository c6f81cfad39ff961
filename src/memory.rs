//! Freed memory kept for reuse while the run contains.
//!
//! respond's allocator (jemalloc, see `src/main.rs`) is built to hand freed pages back to
//! the system at once, which keeps a long run's peak memory low. During containment that
//! costs time: the listing of every open order is read and freed just before the burst
//! of cancels, and the burst then takes fresh pages from the system (a page fault each),
//! while its answers hand theirs back (an `madvise` each, which interrupts the other
//! cores to flush their TLBs). So freed pages are kept from the first request until the
//! walk is past containment, then handed back in one go.

/// Holds freed pages in the allocator until dropped; then, once no other guard is left,
/// returns them, and every page freed from then on, to the system at once again.
#[must_use = "freed pages are kept only while this is held"]
pub struct KeepFreedPages(());

/// Guards alive in this process, and the allocator's setting before the first of them
/// (`None`: it could not be changed).
static HOLDERS: std::sync::Mutex<(usize, Option<isize>)> = std::sync::Mutex::new((0, None));

fn holders() -> std::sync::MutexGuard<'static, (usize, Option<isize>)> {
    HOLDERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keep freed pages from now until the guard (and every other one) is dropped. Best
/// effort: where the allocator cannot be told, nothing changes.
pub fn keep_freed_pages() -> KeepFreedPages {
    let mut holders = holders();
    if holders.0 == 0 {
        holders.1 = imp::keep();
    }
    holders.0 += 1;
    KeepFreedPages(())
}

impl Drop for KeepFreedPages {
    fn drop(&mut self) {
        let mut holders = holders();
        holders.0 -= 1;
        if holders.0 == 0 {
            if let Some(before) = holders.1.take() {
                imp::restore(before);
            }
        }
    }
}

#[cfg(all(unix, not(target_env = "musl")))]
mod imp {
    use tikv_jemalloc_ctl::{Access, AsName};

    /// The one arena respond's allocator runs with (`narenas:1`, `.cargo/config.toml`).
    const DIRTY_DECAY: &[u8] = b"arena.0.dirty_decay_ms\0";
    /// jemalloc's "never purge": freed pages stay until the setting changes.
    const NEVER: isize = -1;

    pub(super) fn keep() -> Option<isize> {
        let name = DIRTY_DECAY.name();
        let before: isize = name.read().ok()?;
        name.write(NEVER).ok()?;
        Some(before)
    }

    /// Back to `before`; at 0 jemalloc purges every kept page as it is set.
    pub(super) fn restore(before: isize) {
        let _ = DIRTY_DECAY.name().write(before);
    }
}

#[cfg(not(all(unix, not(target_env = "musl"))))]
mod imp {
    pub(super) fn keep() -> Option<isize> {
        None
    }

    pub(super) fn restore(_: isize) {}
}

#[cfg(all(test, unix, not(target_env = "musl")))]
mod tests {
    use super::*;
    use tikv_jemalloc_ctl::{Access, AsName};

    fn dirty_decay() -> isize {
        b"arena.0.dirty_decay_ms\0".name().read().unwrap()
    }

    #[test]
    fn pages_are_kept_while_any_guard_lives_and_given_back_after_the_last() {
        // Other tests' drills hold guards too: take one first, so the setting before is
        // whatever the first guard of the process found.
        let outer = keep_freed_pages();
        assert_eq!(dirty_decay(), -1, "kept while a guard lives");
        let inner = keep_freed_pages();
        drop(outer);
        assert_eq!(dirty_decay(), -1, "still kept: a guard is left");
        drop(inner);
        let holders = holders();
        if holders.0 == 0 {
            // The allocator's default, as respond is built (`.cargo/config.toml`).
            assert_eq!(dirty_decay(), 0, "given back after the last guard");
        }
    }
}
