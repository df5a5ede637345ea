//! Tests of the emulator itself: the gateway checks, action semantics, faults, the HTTP
//! surface and the shipped scenarios.

mod gateway;
mod gateway_v3;
mod http;
mod members;
mod network;
mod products;
mod ram;
mod scenarios;
mod support;
mod workload;
