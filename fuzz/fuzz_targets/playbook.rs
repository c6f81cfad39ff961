//! The playbook loader on any bytes: no panic, no stack overflow, and every problem it
//! reports is positioned inside the text (`FILE:LINE:COLUMN`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use respond::playbook::Playbook;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = respond::actions::builtin();
    if let Err(diags) = Playbook::parse(text, "fuzz.yaml", &registry) {
        assert!(!diags.is_empty());
        let lines = text.split('\n').count() + text.matches('\r').count() + 1;
        for d in &diags.0 {
            assert!(d.line >= 1 && d.line <= lines && d.column >= 1, "{d}");
        }
    }
});
