//! Tests of the forensics analysis on ActionTrail events shaped as LookupEvents returns them:
//! one attack end to end, reading single events, classifying calls, and merging passes.

mod attack;
mod classify;
mod events;
mod merge;
mod support;
