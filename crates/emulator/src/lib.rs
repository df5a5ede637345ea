//! An Alibaba Cloud emulator: RAM, IMS, STS, ActionTrail, BSS, KMS and Security Center RPC
//! APIs on one address, told apart by `Version`, with the gateway's signature checks, fault
//! injection, a control API under `/_emulator/` and the ECS metadata service.
//!
//! Integration tests run it in process ([`spawn`]); `akguard emulator` runs it standalone.

mod actiontrail;
mod auth;
mod bss;
mod clock;
mod control;
mod error;
mod faults;
mod ids;
mod ims;
mod ims_policy;
mod kms;
mod members;
mod metadata;
mod network;
mod params;
mod product;
mod ram;
mod ram_attach;
mod ram_policy;
mod records;
mod sas;
mod scenario;
mod server;
mod signature;
mod signature_v3;
mod state;
mod sts;
mod validate;
mod when;
mod workload;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::EmulatorError;
pub use faults::{FailNext, Faults};
pub use network::{SOURCE_IP_HEADER, SOURCE_VPC_HEADER};
pub use scenario::*;

use clock::Clock;
use state::Shared;

/// A bound emulator with its state loaded, ready to serve.
pub struct Emulator {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Emulator {
    /// Binds (port 0 allowed) and loads the state; does not serve yet.
    pub async fn bind(listen: SocketAddr, scenario: Scenario) -> Result<Emulator, EmulatorError> {
        let shared = Arc::new(Shared::load(scenario, Clock::system())?);
        let bind_error = |source| EmulatorError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(Emulator {
            listener,
            local_addr,
            shared,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves, and runs the scenario's workload if it has one, until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EmulatorError> {
        tracing::info!(addr = %self.local_addr, "emulator listening");
        tokio::spawn(workload::run(self.shared.clone(), shutdown.clone()));
        axum::serve(self.listener, server::router(self.shared))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(EmulatorError::Serve)?;
        tracing::info!("emulator stopped");
        Ok(())
    }
}

/// For tests: binds 127.0.0.1:0, spawns `run` on the current runtime, returns the base URL
/// (`http://127.0.0.1:PORT`) and a guard that cancels the server when dropped.
pub async fn spawn(scenario: Scenario) -> Result<(String, EmulatorGuard), EmulatorError> {
    let emulator = Emulator::bind(SocketAddr::from(([127, 0, 0, 1], 0)), scenario).await?;
    let url = format!("http://{}", emulator.local_addr());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        if let Err(err) = emulator.run(token).await {
            tracing::error!(error = %err, "emulator stopped with an error");
        }
    });
    Ok((url, EmulatorGuard { shutdown }))
}

/// Stops the spawned emulator when dropped.
#[derive(Debug)]
pub struct EmulatorGuard {
    shutdown: CancellationToken,
}

impl Drop for EmulatorGuard {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
