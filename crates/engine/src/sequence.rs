//! Keeps the journal in playbook order while steps run at once: in a phase of
//! overlapping steps, the first unfinished step journals as it goes, and each later
//! step's events are held until every step before it has finished and been written. So
//! a step's events stay together (started … finished) in the order of the playbook, as
//! they would in a walk one step at a time, and `report verify`, resume and every
//! rendering read them the same way. Events of steps outside a phase (and events with
//! no step) go straight to the journal.
//!
//! What is held is not durable until written: a run killed in a phase loses the held
//! steps' events, and their steps (read-only) run again on resume, as steps that never
//! started.
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::report::journal::{Event, Journal, JournalError, Record};

#[derive(Default)]
pub struct Sequencer {
    order: Mutex<Order>,
}

#[derive(Default)]
struct Order {
    /// The phase's steps not yet written out, in playbook order; the front one is live.
    queue: VecDeque<String>,
    /// Events waiting for the steps before theirs, per step (a step is held while it
    /// has an entry, empty or not).
    held: HashMap<String, Vec<Event>>,
    /// Steps of the phase that have journaled their last event.
    finished: HashSet<String>,
    /// Someone is writing held events out (one writer at a time keeps their order).
    writing: bool,
}

impl Sequencer {
    fn order(&self) -> MutexGuard<'_, Order> {
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A phase of steps that run at once begins: every step but the first is held.
    pub fn begin(&self, steps: &[String]) {
        let mut order = self.order();
        debug_assert!(order.queue.is_empty(), "one phase at a time");
        order.queue = steps.iter().cloned().collect();
        order.finished.clear();
        order.held = steps
            .iter()
            .skip(1)
            .map(|s| (s.clone(), Vec::new()))
            .collect();
    }

    /// Whether `step`'s events are being held now.
    pub fn holds(&self, step: &str) -> bool {
        self.order().held.contains_key(step)
    }

    /// Journal `event` now, or hold it until the steps before its step are written
    /// (`None`).
    pub fn record(&self, journal: &Journal, event: Event) -> Result<Option<Record>, JournalError> {
        match self.hold(event) {
            None => Ok(None),
            Some(event) => journal.record(event).map(Some),
        }
    }

    /// Hold `event` if its step is held; otherwise hand it back.
    fn hold(&self, event: Event) -> Option<Event> {
        let mut order = self.order();
        if order.held.is_empty() {
            return Some(event);
        }
        match step_of(&event).and_then(|step| order.held.get_mut(step)) {
            Some(held) => {
                held.push(event);
                None
            }
            None => Some(event),
        }
    }

    /// Like [`Sequencer::record`] for observers that cannot stop the run: a journal
    /// failure marks the journal broken, and the engine stops at its next record.
    pub fn record_or_mark(&self, journal: &Journal, event: Event) {
        if let Some(event) = self.hold(event) {
            journal.record_or_mark(event);
        }
    }

    /// `step` has journaled its last event: write out every later step that may now be,
    /// in order, handing each written record to `absorb` (the run's state takes
    /// evidence rows from it). The phase is over when every step has finished.
    pub fn finish(
        &self,
        journal: &Journal,
        step: &str,
        absorb: &dyn Fn(Record),
    ) -> Result<(), JournalError> {
        {
            let mut order = self.order();
            order.finished.insert(step.to_string());
            if order.writing {
                // The writer looks at what finished after each batch it writes.
                return Ok(());
            }
            order.writing = true;
        }
        let written = self.write_out(journal, absorb);
        if written.is_err() {
            self.order().writing = false;
        }
        written
    }

    /// Pop finished steps off the front; write the new front's held events (and what it
    /// adds meanwhile) until it has none left, then let it journal live. Clears
    /// `writing` when it stops without an error.
    fn write_out(&self, journal: &Journal, absorb: &dyn Fn(Record)) -> Result<(), JournalError> {
        loop {
            let batch = {
                let mut order = self.order();
                let front = loop {
                    match order.queue.front() {
                        Some(front) if !order.held.contains_key(front) => {
                            if order.finished.contains(front) {
                                order.queue.pop_front();
                            } else {
                                // Done writing, decided under the same lock a finishing
                                // step looks at: it finds no writer and writes itself.
                                order.writing = false;
                                return Ok(());
                            }
                        }
                        Some(front) => break front.clone(),
                        None => {
                            order.finished.clear();
                            order.writing = false;
                            return Ok(());
                        }
                    }
                };
                let batch = std::mem::take(order.held.get_mut(&front).expect("held"));
                if batch.is_empty() {
                    // Nothing left to write: from now on it journals live.
                    order.held.remove(&front);
                    continue;
                }
                batch
            };
            for event in batch {
                absorb(journal.record(event)?);
            }
        }
    }

    /// Write out whatever is still held, in playbook order (a phase cut short: a journal
    /// failure in one of its steps), and end the phase.
    pub fn end(&self, journal: &Journal, absorb: &dyn Fn(Record)) -> Result<(), JournalError> {
        let steps: Vec<String> = self.order().queue.iter().cloned().collect();
        for step in &steps {
            self.finish(journal, step, absorb)?;
        }
        let mut order = self.order();
        order.queue.clear();
        order.held.clear();
        order.finished.clear();
        Ok(())
    }
}

/// The step an event belongs to, if any.
fn step_of(event: &Event) -> Option<&str> {
    match event {
        Event::StepStarted { step, .. }
        | Event::StepSkipped { step, .. }
        | Event::Preview { step, .. }
        | Event::Answer { step, .. }
        | Event::Finding { step, .. }
        | Event::Evidence { step, .. }
        | Event::StepError { step, .. }
        | Event::StepFinished { step, .. }
        | Event::Attestation { step, .. }
        | Event::Probe { step, .. }
        | Event::ScanBatch { step, .. } => Some(step),
        Event::Request { step, .. } | Event::Note { step, .. } => step.as_deref(),
        Event::RunStarted { .. }
        | Event::RunResumed { .. }
        | Event::Interrupted { .. }
        | Event::RunFinished { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(step: &str, message: &str) -> Event {
        Event::Note {
            step: Some(step.into()),
            level: crate::report::journal::NoteLevel::Info,
            message: message.into(),
        }
    }

    fn messages(path: &std::path::Path) -> Vec<String> {
        crate::report::journal::read(path)
            .unwrap()
            .records()
            .filter_map(|r| match &r.event {
                Event::Note { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn later_steps_are_written_in_playbook_order_whatever_order_they_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let journal = Journal::create(&path, "genesis".into()).unwrap();
        let seq = Sequencer::default();
        let steps: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        seq.begin(&steps);
        let none = |_: Record| {};
        assert!(seq.record(&journal, note("c", "c1")).unwrap().is_none());
        assert!(seq.record(&journal, note("b", "b1")).unwrap().is_none());
        seq.record(&journal, note("a", "a1")).unwrap();
        seq.record(&journal, note("x", "outside")).unwrap();
        seq.finish(&journal, "c", &none).unwrap();
        assert_eq!(messages(&path), ["a1", "outside"]);
        seq.finish(&journal, "a", &none).unwrap();
        // b is live now; c waits for it.
        assert!(!seq.holds("b") && seq.holds("c"));
        seq.record(&journal, note("b", "b2")).unwrap();
        assert_eq!(messages(&path), ["a1", "outside", "b1", "b2"]);
        seq.finish(&journal, "b", &none).unwrap();
        assert_eq!(messages(&path), ["a1", "outside", "b1", "b2", "c1"]);
        assert!(!seq.holds("c"));
        seq.end(&journal, &none).unwrap();
    }

    #[test]
    fn ending_a_phase_cut_short_writes_what_was_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let journal = Journal::create(&path, "genesis".into()).unwrap();
        let seq = Sequencer::default();
        seq.begin(&["a".into(), "b".into()]);
        seq.record(&journal, note("b", "b1")).unwrap();
        seq.end(&journal, &|_| {}).unwrap();
        assert_eq!(messages(&path), ["b1"]);
        assert!(!seq.holds("b"));
    }
}
