//! The turns this process's writers take at SQLite's one write lock. SQLite makes a writer
//! that finds the lock held sleep and try again (after 1, 2, 5, 10 ms ...), so a commit that
//! queues behind another waits several times as long as the commit it queued behind, and
//! the writer that wins is whichever wakes first. Taking turns in the process hands the lock
//! on the moment it is free, and lets a write that a cloud call is held for (its intent) go
//! before the rest. PostgreSQL's writers queue in the server and take no turns.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Whether anything waits on the wire for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Urgency {
    /// A call is held until the write is durable (its intent, its rate-limit slot): it goes
    /// before every other waiting write.
    CallWaits,
    Other,
}

#[derive(Default)]
pub(super) struct WriteTurns {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// A writer holds the turn (or it is on its way to the next one).
    taken: bool,
    urgent: VecDeque<oneshot::Sender<()>>,
    other: VecDeque<oneshot::Sender<()>>,
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
    /// Waits for the turn: urgent writers in the order they came, then the others in theirs.
    pub async fn take(&self, urgency: Urgency) -> Turn<'_> {
        let handed = {
            let mut queue = lock(&self.queue);
            if !queue.taken {
                queue.taken = true;
                return Turn { turns: self };
            }
            let (hand, handed) = oneshot::channel();
            match urgency {
                Urgency::CallWaits => queue.urgent.push_back(hand),
                Urgency::Other => queue.other.push_back(hand),
            }
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
        while let Some(next) = queue.urgent.pop_front().or_else(|| queue.other.pop_front()) {
            if next.send(()).is_ok() {
                return;
            }
        }
        queue.taken = false;
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

    #[tokio::test]
    async fn a_write_a_call_waits_for_goes_before_writes_that_queued_earlier() {
        let turns = Arc::new(WriteTurns::default());
        let held = turns.take(Urgency::Other).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (name, urgency) in [
            ("other-1", Urgency::Other),
            ("other-2", Urgency::Other),
            ("urgent-1", Urgency::CallWaits),
            ("urgent-2", Urgency::CallWaits),
        ] {
            let (writer, order) = (turns.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _turn = writer.take(urgency).await;
                order.lock().unwrap().push(name);
            }));
            // Each is queued before the next is spawned.
            while queued(&turns) < waiters.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["urgent-1", "urgent-2", "other-1", "other-2"]
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
        queue.urgent.len() + queue.other.len()
    }
}
