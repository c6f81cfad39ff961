//! `${{ }}` templates and `when:` conditions on any text: no panic, no stack overflow;
//! errors point inside the text; what parses evaluates and renders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use respond::playbook::expr::{parse_condition, Reference, Template, Val};

fn lookup(r: &Reference) -> Val {
    match r {
        Reference::Input(_) => Val::Str("72h".into()),
        Reference::KeyMasked => Val::Str("AbCd…wXyZ".into()),
        Reference::StepOutput { .. } => Val::Null,
        Reference::StepConfirmed(_) => Val::Bool(true),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let chars = text.chars().count();
    match parse_condition(text) {
        Ok(expr) => {
            let _ = expr.eval(&lookup).truthy();
        }
        Err(e) => assert!(e.offset <= chars),
    }
    match Template::parse(text) {
        Ok(t) => {
            let _ = t.render(&lookup);
        }
        Err(errors) => assert!(errors.iter().all(|e| e.offset <= chars)),
    }
});
