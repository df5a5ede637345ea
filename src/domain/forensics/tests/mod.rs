//! Tests of the forensics analysis on ActionTrail events shaped as LookupEvents returns them:
//! one attack end to end, reading single events, classifying calls, merging passes, and
//! hostile text in events.

mod attack;
mod classify;
mod events;
mod hostile;
mod merge;
mod support;
