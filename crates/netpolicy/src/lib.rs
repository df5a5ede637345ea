//! The AccessKey network policy document and CIDR blocks: the one piece of Alibaba's model
//! that akguard (which writes and compares policies) and its emulator (which enforces them)
//! both need, kept apart so the emulator does not depend on the daemon.

pub mod cidr;
pub mod fence;

pub use cidr::Cidr;
