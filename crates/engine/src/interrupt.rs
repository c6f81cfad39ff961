//! Ctrl-C and SIGTERM, turned into a value the engine can wait on next to a step.
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => crate::exit::SIGINT,
            Signal::Terminate => crate::exit::SIGTERM,
        }
    }
}

/// A handle that reports the first signal received.
#[derive(Clone)]
pub struct Interrupt {
    rx: watch::Receiver<Option<Signal>>,
    tx: std::sync::Arc<watch::Sender<Option<Signal>>>,
}

impl Interrupt {
    /// An interrupt nobody triggers except through [`Interrupt::trigger`] (tests).
    pub fn manual() -> Interrupt {
        let (tx, rx) = watch::channel(None);
        Interrupt {
            rx,
            tx: std::sync::Arc::new(tx),
        }
    }

    /// Listen for SIGINT and SIGTERM. Must be called inside the runtime.
    pub fn install() -> Interrupt {
        let interrupt = Interrupt::manual();
        let tx = interrupt.tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            loop {
                let sig = tokio::select! {
                    _ = int.recv() => Signal::Interrupt,
                    _ = term.recv() => Signal::Terminate,
                };
                // Keep the first signal; a second Ctrl-C does not change what is recorded.
                tx.send_if_modified(|current| {
                    if current.is_none() {
                        *current = Some(sig);
                        true
                    } else {
                        false
                    }
                });
            }
        });
        interrupt
    }

    pub fn trigger(&self, signal: Signal) {
        let _ = self.tx.send(Some(signal));
    }

    pub fn received(&self) -> Option<Signal> {
        *self.rx.borrow()
    }

    /// Wait until a signal arrives.
    pub async fn wait(&self) -> Signal {
        let mut rx = self.rx.clone();
        loop {
            if let Some(sig) = *rx.borrow_and_update() {
                return sig;
            }
            if rx.changed().await.is_err() {
                // Sender gone: no signal will ever come.
                std::future::pending::<()>().await;
            }
        }
    }
}
