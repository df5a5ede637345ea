//! akguard: responds automatically when an Alibaba Cloud AccessKey pair leaks.

pub mod app;
pub mod audit_watch;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod domain;
pub mod escape;
#[cfg(test)]
mod hostile;
pub mod http;
pub mod intake;
pub mod monitoring;
pub mod notify;
pub mod readiness;
pub mod replicas;
pub mod report;
pub mod singleton;
pub mod store;
pub mod telemetry;
pub mod worker;
