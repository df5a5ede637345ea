//! The vocabulary of akguard: notifications, incidents and the audit chain. Pure: no I/O.

pub mod audit;
pub mod billing;
pub mod explain;
pub mod findings;
pub mod forensics;
pub mod incident;
pub mod machine;
pub mod money;
pub mod notice;
pub mod notification;
pub mod protection;
pub mod schedule;
pub mod text;
pub mod triage;
pub mod undo;

// Shared with the emulator, which enforces the policies akguard writes.
pub use akguard_netpolicy::{cidr, fence};

pub use audit::{AuditEntry, AuditRecord, ChainBreak};
pub use cidr::Cidr;
pub use findings::{Finding, Findings, FindingsPatch};
pub use incident::{Incident, IncidentId, Sighting};
pub use machine::{Event, IllegalTransition, IncidentState, Path, Reason, Step, transition};
pub use money::Amount;
pub use notification::{
    AccessKeyId, Activity, InvalidAccessKeyId, LeakNotification, OwnerType, Signal,
};
pub use protection::{Protected, Protection};
pub use schedule::Schedule;
