//! Migrations compiled into the binary, one folder per backend with matching numbers.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "incident store",
        include_str!("../../migrations/sqlite/0001_incident_store.sql"),
    ),
    (
        2,
        "poller marks",
        include_str!("../../migrations/sqlite/0002_poller_marks.sql"),
    ),
    (
        3,
        "remediation",
        include_str!("../../migrations/sqlite/0003_remediation.sql"),
    ),
    (
        4,
        "dry run",
        include_str!("../../migrations/sqlite/0004_dry_run.sql"),
    ),
    (
        5,
        "stated detection time",
        include_str!("../../migrations/sqlite/0005_stated_detection_time.sql"),
    ),
    (
        6,
        "audit anchor",
        include_str!("../../migrations/sqlite/0006_audit_anchor.sql"),
    ),
    (
        7,
        "outbox",
        include_str!("../../migrations/sqlite/0007_outbox.sql"),
    ),
    (
        8,
        "approval pending",
        include_str!("../../migrations/sqlite/0008_approval_pending.sql"),
    ),
    (
        9,
        "delivery log",
        include_str!("../../migrations/sqlite/0009_delivery_log.sql"),
    ),
];

pub fn sqlite() -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            SQLITE
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect(),
        ),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}
