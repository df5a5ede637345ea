//! Group commit: concurrent deliveries share one durable transaction, so intake keeps pace
//! with bursts while every caller still answers only after its own rows are on disk. Where
//! the store can record several batches at once (PostgreSQL), several writers each take the
//! next batch while the others commit theirs. Every intake path passes here, so this is
//! where a stated detection time is clamped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::IntakeError;
use crate::domain::Signal;
use crate::store::{AuditGate, Delivery, IntakeOutcome, Store, StoreError};

type Reply = oneshot::Sender<Result<IntakeOutcome, Arc<StoreError>>>;

/// The handle through which every intake path submits deliveries.
#[derive(Clone)]
pub struct IntakeQueue {
    tx: mpsc::Sender<(Delivery, Reply)>,
    gate: AuditGate,
    max_detection_age: Duration,
}

impl IntakeQueue {
    /// Starts the writers (`Store::intake_writers`). They stop once every handle is dropped
    /// and the queue is drained; the returned task ends when all have.
    /// `wake` is notified after each commit that gave workers something to do, so they start
    /// at once. Nothing is recorded while `gate` says the audit chain is broken. Detection
    /// times are clamped to `max_detection_age` before receipt.
    pub fn start(
        store: Arc<dyn Store>,
        gate: AuditGate,
        max_batch: usize,
        wake: Arc<Notify>,
        max_detection_age: Duration,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let rx = Arc::new(Mutex::new(rx));
        let mut writers = JoinSet::new();
        for _ in 0..store.intake_writers().max(1) {
            writers.spawn(run_writer(
                store.clone(),
                rx.clone(),
                max_batch,
                wake.clone(),
            ));
        }
        let writer = tokio::spawn(async move { while writers.join_next().await.is_some() {} });
        (
            Self {
                tx,
                gate,
                max_detection_age,
            },
            writer,
        )
    }

    /// Records one delivery; returns once it is durable.
    pub async fn submit(&self, mut delivery: Delivery) -> Result<IntakeOutcome, IntakeError> {
        self.gate
            .check_appendable()
            .map_err(|err| IntakeError::Store(Arc::new(err)))?;
        if let Signal::Leak(leak) = &mut delivery.signal {
            leak.clamp_detected_at(delivery.received_at, self.max_detection_age);
            if let Some(stated) = leak.stated_detected_at {
                tracing::warn!(
                    source = %delivery.source,
                    access_key_id = %leak.access_key_id,
                    stated = %stated,
                    used = ?leak.detected_at,
                    "stated detection time is outside intake.max_detection_age before receipt; clamped"
                );
            }
        }
        let (reply, outcome) = oneshot::channel();
        self.tx
            .send((delivery, reply))
            .await
            .map_err(|_| IntakeError::ShuttingDown)?;
        match outcome.await {
            Ok(result) => result.map_err(IntakeError::Store),
            Err(_) => Err(IntakeError::ShuttingDown),
        }
    }
}

/// Takes what has arrived (while another writer waits its turn to take) and records it.
async fn run_writer(
    store: Arc<dyn Store>,
    rx: Arc<Mutex<mpsc::Receiver<(Delivery, Reply)>>>,
    max_batch: usize,
    wake: Arc<Notify>,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.lock().await.recv_many(&mut jobs, max_batch).await > 0 {
        let (deliveries, replies): (Vec<Delivery>, Vec<Reply>) = jobs.drain(..).unzip();
        match store.record_deliveries(&deliveries).await {
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, IntakeOutcome::Created(_) | IntakeOutcome::Retriaged(_)))
                {
                    wake.notify_waiters();
                }
                for ((delivery, reply), outcome) in deliveries.iter().zip(replies).zip(outcomes) {
                    log_outcome(delivery, outcome);
                    let _ = reply.send(Ok(outcome));
                }
            }
            // One bad delivery must not fail the others that shared its transaction.
            Err(err) if deliveries.len() > 1 => {
                tracing::warn!(error = %err, batch = deliveries.len(), "batch failed; recording one by one");
                for (delivery, reply) in deliveries.into_iter().zip(replies) {
                    let result = store
                        .record_deliveries(std::slice::from_ref(&delivery))
                        .await;
                    let _ = reply.send(single(&delivery, result));
                }
            }
            Err(err) => {
                let _ = replies
                    .into_iter()
                    .next()
                    .map(|r| r.send(single(&deliveries[0], Err(err))));
            }
        }
    }
}

fn single(
    delivery: &Delivery,
    result: Result<Vec<IntakeOutcome>, StoreError>,
) -> Result<IntakeOutcome, Arc<StoreError>> {
    match result.map(|o| o.into_iter().next()) {
        Ok(Some(outcome)) => {
            log_outcome(delivery, outcome);
            Ok(outcome)
        }
        Ok(None) => Err(Arc::new(StoreError::Corrupt(
            "no outcome for a delivery".into(),
        ))),
        Err(err) => {
            tracing::error!(error = %err, source = %delivery.source, "cannot record notification");
            Err(Arc::new(err))
        }
    }
}

fn log_outcome(delivery: &Delivery, outcome: IntakeOutcome) {
    let key = delivery.signal.access_key_id();
    match outcome {
        IntakeOutcome::Created(id) => {
            tracing::info!(incident.id = id.0, access_key_id = %key, source = %delivery.source, "incident opened")
        }
        IntakeOutcome::Sighting(id) => {
            tracing::info!(incident.id = id.0, access_key_id = %key, source = %delivery.source, "sighting recorded")
        }
        IntakeOutcome::Retriaged(id) => {
            tracing::warn!(incident.id = id.0, access_key_id = %key, source = %delivery.source, "a later report sends the incident back to triage")
        }
        IntakeOutcome::Replay(id) => {
            tracing::debug!(incident.id = id.0, source = %delivery.source, "delivery replayed; nothing changed")
        }
        IntakeOutcome::Ignored => {
            tracing::debug!(access_key_id = %key, source = %delivery.source, "activity of a key without an open incident")
        }
    }
}
