//! `akguard demo`: the emulator with a built-in scenario and the daemon pointed at it, in one
//! process with a throwaway database, so a newcomer watches a leak handled end to end.
//!
//! The demo drives the daemon only from outside, as a real deployment is driven: a signed
//! webhook delivery in, the status API (with a viewer token) to follow the incident.

mod narrate;
mod report;
mod setup;

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use akguard::app::{App, AppError};
use akguard::config::{ConfigError, Settings};
use akguard::store::{self, StoreError};
use akguard_emulator::{Emulator, EmulatorError};

/// How long the demo waits for its incident before giving up; it normally takes seconds.
const PATIENCE: Duration = Duration::from_secs(120);
/// How long after a failed request an interrupt may still arrive and explain it: Ctrl-C
/// reaches the in-process daemon's own handler too, which may close its listener first.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare the demo's scratch directory: {0}")]
    Scratch(std::io::Error),
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the demo's own request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Unexpected(String),
}

pub struct DemoOptions {
    /// Exit after the summary instead of serving until `shutdown`.
    pub exit: bool,
    /// Where the daemon listens; port 0 picks a free one.
    pub listen: SocketAddr,
}

/// Runs the demo. `Ok(true)` when the incident was resolved.
pub async fn run(options: DemoOptions, shutdown: CancellationToken) -> Result<bool, DemoError> {
    let scratch = setup::ScratchDir::create().map_err(DemoError::Scratch)?;
    let emulator = Emulator::bind(SocketAddr::from(([127, 0, 0, 1], 0)), setup::scenario()).await?;
    let emulator_url = format!("http://{}", emulator.local_addr());
    let secrets = setup::Secrets::generate();
    let config = setup::write_config(scratch.path(), options.listen, &emulator_url, &secrets)
        .map_err(DemoError::Scratch)?;
    let settings = Settings::load_isolated(&config, setup::secret_variables(&secrets))?;
    let app = App::build(&settings).await?;
    let base = format!("http://{}", app.local_addr());
    let emulator_task = tokio::spawn(emulator.run(shutdown.clone()));
    let daemon = tokio::spawn(app.run(shutdown.clone()));

    narrate::banner(&emulator_url, &base, scratch.path());
    let shown = Shown {
        base: &base,
        emulator_url: &emulator_url,
        secrets: &secrets,
        database_url: &settings.database.url,
    };
    let result = show(&shown, &options, &shutdown).await;
    // Whatever happened, the daemon drains before its database is removed with the scratch
    // directory.
    shutdown.cancel();
    let daemon = daemon.await;
    let emulator = emulator_task.await;
    drop(scratch);
    let resolved = result?;
    if let Ok(Err(err)) = daemon {
        return Err(err.into());
    }
    if let Ok(Err(err)) = emulator {
        return Err(err.into());
    }
    Ok(resolved)
}

/// What the running demo shows the user.
struct Shown<'a> {
    base: &'a str,
    emulator_url: &'a str,
    secrets: &'a setup::Secrets,
    database_url: &'a str,
}

/// Reports the leak, narrates the incident, prints the summary and, without `--exit`, waits
/// for Ctrl-C. `Ok(true)` when the incident was resolved.
async fn show(
    shown: &Shown<'_>,
    options: &DemoOptions,
    shutdown: &CancellationToken,
) -> Result<bool, DemoError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let follow = narrate::Follow {
        client: &client,
        base: shown.base,
        token: &shown.secrets.viewer_token,
    };
    // The interrupt first: it also stops the daemon, so a request in flight then fails, and an
    // unbiased pick between the two would report that failure instead of the interrupt.
    let outcome = tokio::select! {
        biased;
        () = shutdown.cancelled() => {
            narrate::interrupted();
            return Ok(false);
        }
        outcome = follow.run(&shown.secrets.webhook, PATIENCE) => match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                if tokio::time::timeout(INTERRUPT_GRACE, shutdown.cancelled())
                    .await
                    .is_ok()
                {
                    narrate::interrupted();
                    return Ok(false);
                }
                return Err(err);
            }
        },
    };
    let store = store::open(shown.database_url, 1).await?;
    let chain = store::verify_audit_chain(store.as_ref(), None).await?;
    narrate::summary(&outcome, &chain);
    if !chain.is_intact() {
        return Err(DemoError::Unexpected("the audit chain is broken".into()));
    }
    if !options.exit {
        narrate::still_running(
            shown.base,
            shown.emulator_url,
            outcome.incident_id,
            shown.secrets,
        );
        shutdown.cancelled().await;
    }
    Ok(outcome.resolved())
}
