//! Integration tests: each starts the real daemon on port 0 with a fresh database.

mod api_edges;
mod artefacts;
mod audit_chain;
mod auth_rate_limit;
mod authentication;
mod cli;
mod cloud_client;
mod cloud_support;
mod connections;
#[cfg(feature = "fault-injection")]
mod crash;
mod deduplication;
mod demo;
mod events;
mod free_text;
mod helpers;
mod intake_formats;
mod logging;
mod notify;
mod openapi;
mod oversight;
mod persistence;
mod readiness;
mod receiver;
mod remediation;
mod report;
mod rotation;
mod rotation_safety;
mod secrets;
mod security_center;
mod self_protection;
mod signatures;
mod status_api;
mod triage;
mod upgrade;
mod validation;
