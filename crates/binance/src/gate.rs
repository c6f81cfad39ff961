//! The concurrency limit, with priority: when a slot frees up, a waiting urgent request
//! gets it before any waiting normal one. (tokio's `Semaphore` is strictly FIFO, which
//! would queue a cancel behind a page of trade history.) Normal requests may also hold
//! only part of the slots, so a burst of cancels — one per symbol, all at once — goes out
//! in one round trip, while evidence pulls stay at a pace that keeps memory small.
use std::pin::pin;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::Priority;

pub(crate) struct Gate {
    state: Mutex<GateState>,
    freed: Notify,
}

struct GateState {
    in_flight: usize,
    normal_in_flight: usize,
    limit: usize,
    normal_limit: usize,
    urgent_waiting: usize,
}

/// A slot; dropping it frees the slot.
pub(crate) struct Slot<'a> {
    gate: &'a Gate,
    normal: bool,
}

impl Gate {
    /// At most `limit` requests in flight, of which at most `normal_limit` normal ones.
    pub(crate) fn new(limit: usize, normal_limit: usize) -> Gate {
        let limit = limit.max(1);
        Gate {
            state: Mutex::new(GateState {
                in_flight: 0,
                normal_in_flight: 0,
                limit,
                normal_limit: normal_limit.clamp(1, limit),
                urgent_waiting: 0,
            }),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn acquire(&self, priority: Priority) -> Slot<'_> {
        let urgent = priority == Priority::Urgent;
        let mut registered = false;
        let _unregister = UrgentGuard {
            gate: self,
            active: urgent,
        };
        loop {
            // Register for the wake-up before looking, so a slot freed in between is
            // not missed.
            let mut freed = pin!(self.freed.notified());
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                if urgent && !registered {
                    state.urgent_waiting += 1;
                    registered = true;
                }
                let may_go = urgent
                    || (state.urgent_waiting == 0 && state.normal_in_flight < state.normal_limit);
                if may_go && state.in_flight < state.limit {
                    state.in_flight += 1;
                    if !urgent {
                        state.normal_in_flight += 1;
                    }
                    return Slot {
                        gate: self,
                        normal: !urgent,
                    };
                }
            }
            freed.await;
        }
    }
}

/// Takes an urgent waiter off the count when it leaves `acquire` (with a slot, or
/// because its future was dropped).
struct UrgentGuard<'a> {
    gate: &'a Gate,
    active: bool,
}

impl Drop for UrgentGuard<'_> {
    fn drop(&mut self) {
        if self.active {
            let mut state = self.gate.lock();
            state.urgent_waiting = state.urgent_waiting.saturating_sub(1);
            drop(state);
            self.gate.freed.notify_waiters();
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.in_flight -= 1;
        if self.normal {
            state.normal_in_flight -= 1;
        }
        drop(state);
        self.gate.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn urgent_waiters_go_first() {
        let gate = Arc::new(Gate::new(1, 1));
        let held = gate.acquire(Priority::Normal).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, p) in [Priority::Normal, Priority::Normal, Priority::Urgent]
            .into_iter()
            .enumerate()
        {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = gate.acquire(p).await;
                order.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], 2, "the urgent request went first");
    }

    #[tokio::test(start_paused = true)]
    async fn normal_requests_leave_the_other_slots_to_urgent_ones() {
        let gate = Gate::new(4, 1);
        let _normal = gate.acquire(Priority::Normal).await;
        let second = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            gate.acquire(Priority::Normal),
        )
        .await;
        assert!(second.is_err(), "a second normal request waits");
        let mut urgent = Vec::new();
        for _ in 0..3 {
            urgent.push(gate.acquire(Priority::Urgent).await);
        }
        let fifth = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            gate.acquire(Priority::Urgent),
        )
        .await;
        assert!(fifth.is_err(), "the limit holds for urgent requests too");
    }
}
