//! The person at the keyboard, as the engine sees them: questions and answers, what to
//! tell them, progress handles. The engine never touches the terminal; the binary's
//! terminal operator (dialoguer, indicatif) implements [`Operator`], and so does
//! [`Scripted`], the one tests answer with.
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

/// What kind of decision a prompt asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// yes / skip / abort before a destructive step.
    Destructive,
    /// done / skip / abort for a manual step.
    Manual,
    /// A yes/no question that is not a step (cancel again? resume?).
    Question,
}

#[derive(Debug)]
pub struct Prompt<'a> {
    pub kind: PromptKind,
    pub step: &'a str,
    pub title: &'a str,
    /// The preview or the instructions, already rendered.
    pub body: &'a str,
    pub question: &'a str,
    /// For questions: the answer that does the least harm, used without a terminal.
    pub default_yes: bool,
}

/// The operator's answer. For manual steps `Yes` means "done".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    Skip(String),
    Abort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only with -v.
    Detail,
    Info,
    /// A step's heading.
    Heading,
    Success,
    Warn,
    /// Something the operator must not miss (orders reappearing, a live key).
    Alert,
}

/// What a progress handle draws on: the terminal operator's bar. Implemented outside
/// this crate; actions and the engine only count and label.
pub trait Bar: Send + Sync {
    fn inc(&self, n: u64);
    fn set_length(&self, total: u64);
    fn set_position(&self, done: u64);
    fn set_message(&self, message: String);
    fn finish_and_clear(&self);
}

/// A progress indicator an operator hands out for a long pull: shown as a bar at a
/// terminal, nowhere otherwise. Actions only count and label; how it looks is the
/// operator's business.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Bar>>);

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(shown)"
        } else {
            "Progress(hidden)"
        })
    }
}

impl Progress {
    /// Shown nowhere.
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// Drawn by `bar`.
    pub fn on(bar: impl Bar + 'static) -> Progress {
        Progress(Some(Arc::new(bar)))
    }

    /// `n` more of the total done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// The total, when it becomes known or changes.
    pub fn set_length(&self, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
        }
    }

    /// How many are done.
    pub fn set_position(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    /// The words beside the bar.
    pub fn set_message(&self, message: impl Into<String>) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.into());
        }
    }

    /// Gone from the screen: the step's own line says how it ended.
    pub fn finish_and_clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

pub trait Operator: Send + Sync {
    /// Whether prompts can be answered (a terminal on stdin and stderr, or a script).
    fn interactive(&self) -> bool;
    /// Ask; only called when `interactive()` is true.
    fn ask(&self, prompt: &Prompt) -> Answer;
    /// Tell the operator something.
    fn say(&self, level: Level, text: &str);
    /// A progress bar (hidden where there is no terminal). `total` None: a spinner.
    fn progress(&self, label: &str, total: Option<u64>) -> Progress;
    /// Which of `items` the operator ticks, starting from `ticked`; only called when
    /// `interactive()` is true. `None`: no answer (the terminal went away, Ctrl-C), so
    /// the defaults stand.
    fn pick(&self, _prompt: &Prompt, _items: &[String], _ticked: &[bool]) -> Option<Vec<bool>> {
        None
    }
}

/// For tests: answers from a script, records everything said, and panics on a question
/// it did not expect or when answers are left over.
pub struct Scripted {
    answers: Mutex<VecDeque<(String, Answer)>>,
    asked: Mutex<Vec<String>>,
    said: Mutex<Vec<(Level, String)>>,
    interactive: bool,
}

impl Scripted {
    /// Each entry: a piece of text the prompt's question or title must contain, and the
    /// answer to give.
    pub fn new<S: Into<String>>(script: impl IntoIterator<Item = (S, Answer)>) -> Self {
        Scripted {
            answers: Mutex::new(script.into_iter().map(|(s, a)| (s.into(), a)).collect()),
            asked: Mutex::new(Vec::new()),
            said: Mutex::new(Vec::new()),
            interactive: true,
        }
    }

    /// A script standing for a run without a terminal: any question is a test failure.
    pub fn without_terminal() -> Self {
        let mut s = Scripted::new(Vec::<(String, Answer)>::new());
        s.interactive = false;
        s
    }

    pub fn said(&self) -> Vec<(Level, String)> {
        self.said.lock().unwrap().clone()
    }

    pub fn said_text(&self) -> String {
        self.said()
            .into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    pub fn assert_exhausted(&self) {
        let left = self.answers.lock().unwrap();
        assert!(
            left.is_empty(),
            "scripted answers never asked for: {:?}",
            *left
        );
    }
}

impl Operator for Scripted {
    fn interactive(&self) -> bool {
        self.interactive
    }

    fn ask(&self, prompt: &Prompt) -> Answer {
        let text = format!("[{}] {} — {}", prompt.step, prompt.title, prompt.question);
        self.asked.lock().unwrap().push(text.clone());
        assert!(self.interactive, "asked without a terminal: {text}");
        let Some((expected, answer)) = self.answers.lock().unwrap().pop_front() else {
            panic!("unexpected question: {text}");
        };
        assert!(
            text.contains(&expected),
            "expected a question about {expected:?}, got: {text}"
        );
        answer
    }

    fn say(&self, level: Level, text: &str) {
        self.said.lock().unwrap().push((level, text.to_string()));
    }

    fn pick(&self, prompt: &Prompt, _items: &[String], _ticked: &[bool]) -> Option<Vec<bool>> {
        let text = format!("[{}] {} — {}", prompt.step, prompt.title, prompt.question);
        self.asked.lock().unwrap().push(text.clone());
        panic!("unexpected pick: {text}");
    }

    fn progress(&self, _label: &str, _total: Option<u64>) -> Progress {
        Progress::hidden()
    }
}
