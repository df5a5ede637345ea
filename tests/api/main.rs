//! Integration tests: each starts the real daemon on port 0 with a fresh database.

mod authentication;
mod cli;
mod deduplication;
mod helpers;
mod intake_formats;
mod persistence;
mod secrets;
mod status_api;
mod validation;
