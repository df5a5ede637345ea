//! Alibaba Cloud: the OpenAPI client akguard acts through, and the emulator it is tested against.

pub mod emulator;
