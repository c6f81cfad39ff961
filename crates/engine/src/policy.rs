//! The one decision policy: for every question respond could put to a person, whether
//! a person is asked, `--yes` or the drill's autopilot answers, the least-harm default
//! stands, or nobody may decide. It is the only code that reads `--yes`, whether a
//! terminal is attached, and the autopilot; the engine, the actions (through
//! `StepContext`), the resume offer and the credential prompt all ask it.

/// What a run knows about who can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `--yes`: destructive steps go ahead without a question.
    pub yes: bool,
    /// A person can be asked (a terminal on stdin and stderr, or a test's script).
    pub terminal: bool,
    /// A drill with `--yes`: the autopilot stands in for the person, manual steps too.
    pub autopilot: bool,
}

/// The questions respond asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    /// A destructive step: yes, skip or abort.
    Destructive,
    /// A manual step: done or skip.
    Manual,
    /// A manual step reported done that the check contradicts: is it done now?
    AskAgain,
    /// A yes/no inside a step ("cancel again?"); `default_yes` is the answer that does
    /// the least harm.
    Inside { default_yes: bool },
    /// One item of a destructive step already confirmed as a whole (one key of several).
    Item,
    /// Which items of a list to tick (the defaults stand unless a person changes them).
    Pick,
    /// Resume an unfinished incident instead of starting a new one.
    Resume,
    /// Credentials or a passphrase typed at a hidden prompt.
    Secret,
}

/// How a question is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A person answers.
    Ask,
    /// Answered yes without asking; `by` is journaled (`--yes`, `autopilot`, `step`: the
    /// confirmation of the whole step covers its items).
    Yes { by: &'static str },
    /// Nobody can be asked and the question may be passed over: the default stands.
    Default(bool),
    /// Nobody can be asked and nobody else may decide: a destructive step stops before
    /// it starts, a manual step is left pending, a secret is not typed.
    Nobody,
}

impl Policy {
    pub fn decide(&self, question: Question) -> Decision {
        let person = self.terminal && !self.autopilot;
        match question {
            Question::Destructive if self.yes => Decision::Yes { by: "--yes" },
            Question::Destructive | Question::Secret if self.terminal => Decision::Ask,
            Question::Destructive | Question::Secret => Decision::Nobody,
            Question::Manual if self.autopilot => Decision::Yes { by: "autopilot" },
            Question::Manual if self.terminal => Decision::Ask,
            Question::Manual => Decision::Nobody,
            Question::AskAgain if person => Decision::Ask,
            Question::AskAgain => Decision::Nobody,
            Question::Inside { .. } | Question::Resume if self.terminal => Decision::Ask,
            Question::Inside { default_yes } => Decision::Default(default_yes),
            Question::Resume => Decision::Default(false),
            Question::Item if person => Decision::Ask,
            Question::Item => Decision::Yes { by: "step" },
            Question::Pick if person => Decision::Ask,
            Question::Pick => Decision::Default(false),
        }
    }

    /// Whether a person answers `question`.
    pub fn asks(&self, question: Question) -> bool {
        self.decide(question) == Decision::Ask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn policy(yes: bool, terminal: bool, autopilot: bool) -> Policy {
        Policy {
            yes,
            terminal,
            autopilot,
        }
    }

    #[test]
    fn every_question_under_every_setting() {
        use Decision::*;
        use Question::*;
        let yes = |by| Yes { by };
        let questions = [
            Destructive,
            Manual,
            AskAgain,
            Inside { default_yes: false },
            Item,
            Pick,
            Resume,
            Secret,
        ];
        // (policy, the decision for each question above, in order)
        let table = [
            // A person at a terminal, no --yes: everything is asked.
            (
                policy(false, true, false),
                [Ask, Ask, Ask, Ask, Ask, Ask, Ask, Ask],
            ),
            // --yes at a terminal: destructive steps go ahead, a person does the rest.
            (
                policy(true, true, false),
                [yes("--yes"), Ask, Ask, Ask, Ask, Ask, Ask, Ask],
            ),
            // No terminal, no --yes: nothing destructive, manual steps pending.
            (
                policy(false, false, false),
                [
                    Nobody,
                    Nobody,
                    Nobody,
                    Default(false),
                    yes("step"),
                    Default(false),
                    Default(false),
                    Nobody,
                ],
            ),
            // --yes without a terminal (a script).
            (
                policy(true, false, false),
                [
                    yes("--yes"),
                    Nobody,
                    Nobody,
                    Default(false),
                    yes("step"),
                    Default(false),
                    Default(false),
                    Nobody,
                ],
            ),
            // The drill's autopilot at a terminal: it stands in for the person in the
            // playbook; questions outside it (resume, secrets) still go to the person.
            (
                policy(true, true, true),
                [
                    yes("--yes"),
                    yes("autopilot"),
                    Nobody,
                    Ask,
                    yes("step"),
                    Default(false),
                    Ask,
                    Ask,
                ],
            ),
        ];
        for (policy, expected) in table {
            for (question, want) in questions.iter().zip(expected) {
                assert_eq!(policy.decide(*question), want, "{policy:?} {question:?}");
            }
        }
    }
}
