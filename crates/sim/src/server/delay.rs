//! The `latency` fault's wait, kept to within a fraction of a millisecond.
//!
//! tokio's timers count whole milliseconds, rounded up, and fire when a runtime worker
//! next looks at its clock: a 50 ms latency answered 51-53 ms after the request arrived,
//! later still while the simulator was busy. Every simulated round trip was that much
//! longer than the fault asked for. Here one thread of the simulator's own holds every
//! pending wait in deadline order and sleeps until the next one is due (the kernel's
//! high-resolution timer), then wakes its request. The waits are in real time: a test
//! that pauses tokio's clock still waits out a latency fault for real.
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The waits of one simulator, and the thread that ends them.
#[derive(Default)]
pub(crate) struct Delays {
    /// Started with the first wait: a simulator without latency has no such thread.
    timer: Mutex<Option<Arc<Timer>>>,
}

#[derive(Default)]
struct Timer {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    due: BinaryHeap<Reverse<Due>>,
    /// Tells waits of the same deadline apart, and keeps them in arrival order.
    next: u64,
    stopped: bool,
}

struct Due {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Due) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Delays {
    /// Wait `wait` from now: never less, and as little more as the machine allows.
    pub(crate) async fn wait(&self, wait: Duration) {
        let at = Instant::now() + wait;
        let Some(timer) = self.timer() else {
            // No thread to be had: tokio's timer still keeps the fault.
            return tokio::time::sleep_until(at.into()).await;
        };
        let (wake, woken) = oneshot::channel();
        {
            let mut queue = lock(&timer.queue);
            let seq = queue.next;
            queue.next += 1;
            queue.due.push(Reverse(Due { at, seq, wake }));
        }
        timer.changed.notify_one();
        // Dropped unsent only when the simulator stops; the answer is then moot.
        let _ = woken.await;
    }

    /// The timer thread, started on first use.
    fn timer(&self) -> Option<Arc<Timer>> {
        let mut slot = lock(&self.timer);
        if slot.is_none() {
            let timer = Arc::new(Timer::default());
            let theirs = timer.clone();
            std::thread::Builder::new()
                .name("sim-latency".into())
                .spawn(move || theirs.run())
                .ok()?;
            *slot = Some(timer);
        }
        slot.clone()
    }
}

impl Drop for Delays {
    fn drop(&mut self) {
        if let Some(timer) = lock(&self.timer).take() {
            lock(&timer.queue).stopped = true;
            timer.changed.notify_one();
        }
    }
}

impl Timer {
    fn run(&self) {
        let mut queue = lock(&self.queue);
        while !queue.stopped {
            let now = Instant::now();
            queue = match queue.due.peek().map(|Reverse(due)| due.at) {
                None => self.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(at) if at <= now => {
                    if let Some(Reverse(due)) = queue.due.pop() {
                        let _ = due.wake.send(());
                    }
                    queue
                }
                Some(at) => {
                    self.changed
                        .wait_timeout(queue, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_end_in_deadline_order_and_never_early() {
        let delays = Arc::new(Delays::default());
        let started = Instant::now();
        let mut tasks = Vec::new();
        // Registered out of order, several sharing a deadline.
        for ms in [30u64, 10, 20, 10, 40, 20, 5, 30] {
            let delays = delays.clone();
            tasks.push(tokio::spawn(async move {
                let asked = Instant::now();
                delays.wait(Duration::from_millis(ms)).await;
                (ms, asked.elapsed(), started.elapsed())
            }));
        }
        let mut ended = Vec::new();
        for task in tasks {
            let (ms, waited, at) = task.await.unwrap();
            assert!(
                waited >= Duration::from_millis(ms),
                "{ms} ms wait ended after {waited:?}"
            );
            ended.push((at, ms));
        }
        ended.sort();
        let order: Vec<u64> = ended.iter().map(|(_, ms)| *ms).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_waits_all_end_and_none_early() {
        let delays = Arc::new(Delays::default());
        let mut tasks = Vec::new();
        for i in 0..300u64 {
            let delays = delays.clone();
            let wait = Duration::from_micros(20_000 + (i * 7919) % 5_000);
            tasks.push(tokio::spawn(async move {
                let asked = Instant::now();
                delays.wait(wait).await;
                (asked + wait, Instant::now())
            }));
        }
        for task in tasks {
            let (due, ended) = task.await.unwrap();
            assert!(ended >= due, "ended {:?} early", due - ended);
        }
    }
}
