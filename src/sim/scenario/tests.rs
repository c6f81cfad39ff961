//! Scenario validation: every problem at once, each at its exact position.
use super::*;

#[test]
fn builtin_scenarios_are_valid() {
    let s = Scenario::builtin_leaked_key();
    assert_eq!(s.name, "leaked-key");
    assert!(s.attacker.is_some());
    let r = Scenario::builtin_read_only();
    assert_eq!(r.keys[0].permissions, Permissions::read_only());
}
