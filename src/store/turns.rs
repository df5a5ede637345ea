//! The turns this process's writers take at SQLite's one write lock. SQLite makes a writer
//! that finds the lock held sleep and try again (after 1, 2, 5, 10 ms ...), so a commit that
//! queues behind another waits several times as long as the commit it queued behind, and
//! the writer that wins is whichever wakes first. Taking turns in the process hands the lock
//! on the moment it is free, and lets the writes containment waits for go before the rest.
//! PostgreSQL's writers queue in the server and take no turns.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// What waits for a write, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Urgency {
    /// A call is held until the write is durable (its intent, its rate-limit slot): it goes
    /// before every other waiting write.
    CallWaits = 0,
    /// A leak's containment waits for it: intake recording a new incident, a worker taking a
    /// containment step.
    Containment = 1,
    Other = 2,
}

/// A waiting `Other` write goes next once this many turns in a row have passed it by, so a
/// stream of urgent writes (a flood of notifications) cannot hold back heartbeats and
/// forensics for good.
const PASSED_OVER_AT_MOST: u32 = 4;

#[derive(Default)]
pub(super) struct WriteTurns {
    queue: Mutex<Queue>,
    /// Held by a claimer while it looks for something to take before it queues (see
    /// `SqlStore::claim_next`): one looks at a time, so a wake-up of every idle worker costs a
    /// claim per incident rather than one per worker.
    pub claim_look: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Queue {
    /// A writer holds the turn (or it is on its way to the next one).
    taken: bool,
    /// Waiting writers by urgency, each in the order they came.
    lanes: [VecDeque<oneshot::Sender<()>>; 3],
    /// Turns handed on in a row while an `Other` write waited.
    passed_over: u32,
}

/// The turn, held until dropped; it then passes to the next waiting writer.
pub(super) struct Turn<'a> {
    turns: &'a WriteTurns,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.turns.pass_on();
    }
}

/// A writer waiting for its turn. Dropped (its caller gave up) after the turn was handed to
/// it but before it saw so, it passes the turn on: otherwise nobody would ever write again.
struct Waiting<'a> {
    turns: &'a WriteTurns,
    handed: oneshot::Receiver<()>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.handed.close();
        if self.handed.try_recv().is_ok() {
            self.turns.pass_on();
        }
    }
}

impl WriteTurns {
    /// Waits for the turn: the most urgent writers first, each urgency in the order its
    /// writers came, but never more than `PASSED_OVER_AT_MOST` turns in a row past an `Other`.
    pub async fn take(&self, urgency: Urgency) -> Turn<'_> {
        let handed = {
            let mut queue = lock(&self.queue);
            if !queue.taken {
                queue.taken = true;
                return Turn { turns: self };
            }
            let (hand, handed) = oneshot::channel();
            queue.lanes[urgency as usize].push_back(hand);
            handed
        };
        let mut waiting = Waiting {
            turns: self,
            handed,
        };
        // Every sender is used to hand the turn over or dropped once its receiver is gone,
        // so an error here cannot happen while this writer still waits.
        let _ = (&mut waiting.handed).await;
        Turn { turns: self }
    }

    fn pass_on(&self) {
        let mut queue = lock(&self.queue);
        let queue = &mut *queue;
        let other = Urgency::Other as usize;
        loop {
            let lane = if queue.passed_over >= PASSED_OVER_AT_MOST && !queue.lanes[other].is_empty()
            {
                Some(other)
            } else {
                queue.lanes.iter().position(|lane| !lane.is_empty())
            };
            let Some(next) = lane.and_then(|lane| queue.lanes[lane].pop_front()) else {
                queue.taken = false;
                return;
            };
            queue.passed_over = if lane == Some(other) || queue.lanes[other].is_empty() {
                0
            } else {
                queue.passed_over + 1
            };
            if next.send(()).is_ok() {
                return;
            }
        }
    }
}

/// The queue's lock; no holder can leave it half-changed (each pushes or pops once).
fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;

    /// Polls `future` once: `Some` if it is ready.
    fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
        future.now_or_never()
    }

    /// Spawns a writer per `(name, urgency)` while the turn is held, each queued before the
    /// next, then hands the turn on; the order in which they wrote.
    async fn order_of(writers: &[(&'static str, Urgency)]) -> Vec<&'static str> {
        let turns = Arc::new(WriteTurns::default());
        let held = turns.take(Urgency::Other).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for &(name, urgency) in writers {
            let (writer, order) = (turns.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _turn = writer.take(urgency).await;
                order.lock().unwrap().push(name);
            }));
            while queued(&turns) < waiters.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        Arc::into_inner(order).unwrap().into_inner().unwrap()
    }

    #[tokio::test]
    async fn a_write_a_call_waits_for_goes_before_writes_that_queued_earlier() {
        let order = order_of(&[
            ("other-1", Urgency::Other),
            ("other-2", Urgency::Other),
            ("urgent-1", Urgency::CallWaits),
            ("urgent-2", Urgency::CallWaits),
        ])
        .await;
        assert_eq!(order, ["urgent-1", "urgent-2", "other-1", "other-2"]);
    }

    #[tokio::test]
    async fn containment_goes_after_calls_and_before_the_rest() {
        let order = order_of(&[
            ("other", Urgency::Other),
            ("containment", Urgency::Containment),
            ("call", Urgency::CallWaits),
        ])
        .await;
        assert_eq!(order, ["call", "containment", "other"]);
    }

    /// A flood of urgent writes (intake under a burst) must not hold a heartbeat back for good.
    #[tokio::test]
    async fn a_waiting_other_write_is_passed_over_at_most_four_times_in_a_row() {
        let mut writers = vec![("other-1", Urgency::Other), ("other-2", Urgency::Other)];
        writers
            .extend(["c1", "c2", "c3", "c4", "c5", "c6"].map(|name| (name, Urgency::Containment)));
        let order = order_of(&writers).await;
        assert_eq!(
            order,
            ["c1", "c2", "c3", "c4", "other-1", "c5", "c6", "other-2"]
        );
    }

    #[tokio::test]
    async fn a_writer_that_gives_up_after_being_handed_the_turn_passes_it_on() {
        let turns = WriteTurns::default();
        let held = turns.take(Urgency::Other).await;
        let mut gives_up = Box::pin(turns.take(Urgency::CallWaits));
        assert!(poll_once(&mut gives_up).is_none(), "the turn is held");
        let mut next = Box::pin(turns.take(Urgency::Other));
        assert!(poll_once(&mut next).is_none(), "the turn is held");
        // Handed to the urgent writer, which is dropped before it sees it.
        drop(held);
        drop(gives_up);
        let turn = poll_once(&mut next).expect("the turn passed to the next writer");
        drop(turn);
        assert!(
            poll_once(&mut Box::pin(turns.take(Urgency::Other))).is_some(),
            "the turn is free once its last holder is done"
        );
    }

    fn queued(turns: &WriteTurns) -> usize {
        let queue = lock(&turns.queue);
        queue.lanes.iter().map(VecDeque::len).sum()
    }
}
