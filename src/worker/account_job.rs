//! The loop every account-wide job runs on each replica (the MFA sweep, the audit batch):
//! look for work and do it while this replica can take the job, else wait for a wake-up or
//! the poll interval.

use std::future::Future;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Inner;

/// Calls `once` until `shutdown`: again at once after it did some work (`Ok(true)`: more may
/// be queued behind it), else after `wake` is notified or a poll interval. An error is
/// handed to `failed` and the loop goes on.
pub(super) async fn run<E, Fut>(
    inner: &Inner,
    wake: &Notify,
    shutdown: CancellationToken,
    mut once: impl FnMut() -> Fut,
    failed: impl Fn(E),
) where
    Fut: Future<Output = Result<bool, E>>,
{
    loop {
        // Registered before the look, so a join between the look and the wait is not lost.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ran = tokio::select! {
            () = shutdown.cancelled() => return,
            ran = once() => ran,
        };
        match ran {
            Ok(true) => continue,
            Ok(false) => {}
            Err(err) => failed(err),
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(inner.config.poll_interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
