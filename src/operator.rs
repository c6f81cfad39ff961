//! The person at the keyboard at this machine: the terminal operator (dialoguer prompts,
//! indicatif bars, on stderr) and the non-interactive one for runs without a TTY. The
//! vocabulary they speak (`Operator`, `Prompt`, `Answer`, `Progress`, and `Scripted` for
//! tests) is the engine's.
use std::io::IsTerminal;
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use crate::engine::operator::{
    Answer, Bar, Level, Operator, Progress, Prompt, PromptKind, Scripted,
};

/// An indicatif bar as the engine's progress handle.
struct Indicatif(ProgressBar);

impl Bar for Indicatif {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn set_length(&self, total: u64) {
        self.0.set_length(total);
    }
    fn set_position(&self, done: u64) {
        self.0.set_position(done);
    }
    fn set_message(&self, message: String) {
        self.0.set_message(message);
    }
    fn finish_and_clear(&self) {
        self.0.finish_and_clear();
    }
}

/// Who answered, for the journal: `--operator NAME`, else `user@host`.
pub fn who(name: Option<&str>) -> String {
    if let Some(name) = name {
        return name.to_string();
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

/// Prompts need a person: stdin and stderr must both be terminals (dialoguer reads keys
/// from the terminal, so a piped stdin alone would not stop it).
pub fn terminal_attached() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Styled for stderr, where everything the operator reads goes: colour only when stderr
/// is a colour terminal and `NO_COLOR` is not set (console's check is per stream, and
/// a plain `style()` would ask about stdout, which `--json` or a pipe may hold).
fn styled(level: Level, text: &str) -> String {
    let s = |t: &str| style(t.to_string()).for_stderr();
    match level {
        Level::Detail => s(text).dim().to_string(),
        Level::Info => text.to_string(),
        Level::Heading => s(text).bold().to_string(),
        Level::Success => s(text).green().to_string(),
        Level::Warn => format!("{} {}", s("warning:").yellow().bold(), text),
        Level::Alert => format!("{} {}", s("!!").red().bold(), s(text).red().bold()),
    }
}

fn shown(level: Level, verbose: u8, quiet: bool) -> bool {
    match level {
        Level::Detail => verbose > 0 && !quiet,
        Level::Warn | Level::Alert => true,
        _ => !quiet,
    }
}

/// Prompts with dialoguer and progress with indicatif, on stderr.
pub struct Terminal {
    multi: MultiProgress,
    verbose: u8,
    quiet: bool,
}

impl Terminal {
    pub fn new(verbose: u8, quiet: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        Terminal {
            multi,
            verbose,
            quiet,
        }
    }

    fn choose(&self, prompt: &Prompt, items: &[&str]) -> std::io::Result<usize> {
        let theme = dialoguer::theme::ColorfulTheme::default();
        self.multi.suspend(|| {
            dialoguer::Select::with_theme(&theme)
                .with_prompt(prompt.question)
                .items(items)
                .default(0)
                .interact()
                .map_err(|dialoguer::Error::IO(e)| e)
        })
    }

    fn reason(&self) -> String {
        let theme = dialoguer::theme::ColorfulTheme::default();
        self.multi
            .suspend(|| {
                dialoguer::Input::<String>::with_theme(&theme)
                    .with_prompt("Reason for skipping (goes into the report)")
                    .allow_empty(true)
                    .interact_text()
            })
            .unwrap_or_default()
    }
}

impl Operator for Terminal {
    fn interactive(&self) -> bool {
        terminal_attached()
    }

    fn ask(&self, prompt: &Prompt) -> Answer {
        if !prompt.body.is_empty() {
            self.multi.suspend(|| eprintln!("{}", prompt.body));
        }
        let choice = match prompt.kind {
            PromptKind::Destructive => self.choose(
                prompt,
                &[
                    "yes, do it now",
                    "skip this step (give a reason)",
                    "abort the run",
                ],
            ),
            PromptKind::Manual => self.choose(
                prompt,
                &[
                    "done",
                    "skip for now (give a reason; stays pending)",
                    "abort the run",
                ],
            ),
            PromptKind::Question => {
                let theme = dialoguer::theme::ColorfulTheme::default();
                let answer = self.multi.suspend(|| {
                    dialoguer::Confirm::with_theme(&theme)
                        .with_prompt(prompt.question)
                        .default(prompt.default_yes)
                        .interact()
                });
                return match answer {
                    Ok(true) => Answer::Yes,
                    Ok(false) => Answer::No,
                    Err(_) => Answer::Abort,
                };
            }
        };
        match choice {
            Ok(0) => Answer::Yes,
            Ok(1) => Answer::Skip(self.reason()),
            // Abort, or the terminal went away / Ctrl-C during the prompt.
            _ => {
                let _ = console::Term::stderr().show_cursor();
                Answer::Abort
            }
        }
    }

    fn say(&self, level: Level, text: &str) {
        if shown(level, self.verbose, self.quiet) {
            let line = styled(level, text);
            self.multi.suspend(|| eprintln!("{line}"));
        }
    }

    fn pick(&self, prompt: &Prompt, items: &[String], ticked: &[bool]) -> Option<Vec<bool>> {
        if !prompt.body.is_empty() {
            self.multi.suspend(|| eprintln!("{}", prompt.body));
        }
        let theme = dialoguer::theme::ColorfulTheme::default();
        let chosen = self.multi.suspend(|| {
            dialoguer::MultiSelect::with_theme(&theme)
                .with_prompt(prompt.question)
                .items(items)
                .defaults(ticked)
                .max_length(15)
                .interact_opt()
        });
        match chosen {
            Ok(Some(indices)) => Some((0..items.len()).map(|i| indices.contains(&i)).collect()),
            _ => {
                let _ = console::Term::stderr().show_cursor();
                None
            }
        }
    }

    fn progress(&self, label: &str, total: Option<u64>) -> Progress {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
                    .expect("valid template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("valid template"),
            ),
        };
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress::on(Indicatif(self.multi.add(bar)))
    }
}

/// No terminal: never asks (the engine applies the no-TTY rules), prints to stderr.
pub struct NonInteractive {
    verbose: u8,
    quiet: bool,
}

impl NonInteractive {
    pub fn new(verbose: u8, quiet: bool) -> Self {
        NonInteractive { verbose, quiet }
    }
}

impl Operator for NonInteractive {
    fn interactive(&self) -> bool {
        false
    }

    fn ask(&self, prompt: &Prompt) -> Answer {
        // The engine does not ask without a terminal; answer the least harmful thing.
        if prompt.kind == PromptKind::Question && prompt.default_yes {
            Answer::Yes
        } else {
            Answer::No
        }
    }

    fn say(&self, level: Level, text: &str) {
        if shown(level, self.verbose, self.quiet) {
            eprintln!("{}", styled(level, text));
        }
    }

    fn progress(&self, _label: &str, _total: Option<u64>) -> Progress {
        Progress::hidden()
    }
}
