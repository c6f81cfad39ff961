//! The simulator's scenario loader on any bytes: no panic, no stack overflow, and every
//! problem positioned inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use respond::sim::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(diags) = Scenario::parse(text, "fuzz.yaml") {
        assert!(!diags.is_empty());
        let lines = text.split('\n').count() + text.matches('\r').count() + 1;
        for d in &diags.0 {
            assert!(d.line >= 1 && d.line <= lines && d.column >= 1, "{d}");
        }
    }
});
