//! Alibaba Cloud: the OpenAPI client akguard acts through (the emulator it is tested against is
//! the `akguard-emulator` crate).

pub mod accounts;
pub mod api;
pub mod client;
pub mod credentials;
pub mod error;
pub mod parse;
pub mod product;
pub mod ratelimit;
pub mod redact;
pub mod retry;
pub mod sign;
pub mod sign_v3;
mod signed;
pub mod transport;

pub use client::{ClientOptions, CloudClient, Request};
pub use error::{CloudError, ErrorClass};
pub use signed::SignatureVersion;
pub use transport::Called;
