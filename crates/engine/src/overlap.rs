//! Which steps run at once, decided from the playbook alone: a phase is a run of
//! consecutive evidence steps (reads only: nothing destructive, nothing for a person,
//! no verification) in which no step refers to another (`when:` or `${{ steps.X }}`),
//! none builds on what another's action leaves behind ([`Action::builds_on`]), and none
//! may stop the run (`on_failure: abort`): what one step finds never changes whether or
//! how another runs. Each pool's weight then serves whichever step can use it, under the
//! client's one scheduler per pool, instead of waiting for the step before to finish.
//! Everything else is a phase of one step, walked as before.
use std::ops::Range;

use super::step::{Action, Kind, Registry};
use crate::playbook::expr::Reference;
use crate::playbook::{ArgValue, OnFailure, Playbook, Step};

/// The phase that starts at step `start`: `start..end`, at least one step.
pub fn phase(playbook: &Playbook, registry: &Registry, start: usize) -> Range<usize> {
    let steps = &playbook.steps;
    let mut end = start + 1;
    if !may_overlap(&steps[start], registry) {
        return start..end;
    }
    while end < steps.len() && joins(&steps[start..end], &steps[end], registry) {
        end += 1;
    }
    start..end
}

/// Every phase of the playbook, in order (for `plan` and the tests).
pub fn phases(playbook: &Playbook, registry: &Registry) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < playbook.steps.len() {
        let range = phase(playbook, registry, start);
        start = range.end;
        out.push(range);
    }
    out
}

fn action<'r>(step: &Step, registry: &'r Registry) -> &'r dyn Action {
    registry
        .get(&step.uses)
        .expect("validated at load")
        .as_ref()
}

/// A step that could share a phase at all: it only reads, and its failure cannot stop
/// the run.
fn may_overlap(step: &Step, registry: &Registry) -> bool {
    let spec = action(step, registry).spec();
    let continues = match step.on_failure {
        Some(OnFailure::Continue) => true,
        Some(OnFailure::Abort) => false,
        None => spec.default_continue_on_failure(),
    };
    spec.kind == Kind::Evidence && continues
}

/// Whether `next` may run at the same time as every step of `phase`.
fn joins(phase: &[Step], next: &Step, registry: &Registry) -> bool {
    if !may_overlap(next, registry) {
        return false;
    }
    let builds_on = action(next, registry).builds_on();
    // The other way round needs no check: a later step's evidence and findings reach
    // the run's state only when they are journaled, after every earlier step finished.
    phase.iter().all(|member| {
        !refers_to(next, &member.id) && !builds_on.contains(&action(member, registry).spec().name)
    })
}

/// Whether `step`'s `when:` or any of its arguments names step `id`.
fn refers_to(step: &Step, id: &str) -> bool {
    let names = |r: &Reference| match r {
        Reference::StepOutput { step, .. } => step == id,
        Reference::StepConfirmed(step) => step == id,
        Reference::Input(_) | Reference::KeyMasked => false,
    };
    if let Some(when) = &step.when {
        if when.references().into_iter().any(names) {
            return true;
        }
    }
    step.args.iter().any(|arg| match &arg.value {
        ArgValue::Text(t) => t.references().iter().any(|(r, _)| names(r)),
        ArgValue::List(items) => items
            .iter()
            .any(|t| t.references().iter().any(|(r, _)| names(r))),
        ArgValue::Bool(_) | ArgValue::Int(_) | ArgValue::Duration(_) => false,
    })
}
