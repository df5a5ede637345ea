//! The one fenced write to an incident's row. A worker's claim, heartbeat and step outcome,
//! an operator's event and intake's retriage all change an incident through
//! [`FencedUpdate`], so a writer whose lease has been taken over or cancelled is refused
//! the same way, whoever it is.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Encode, Executor, Type};

use super::sql::Sql;
use super::{Lease, ScheduleChange, StoreError};
use crate::domain::IncidentId;

/// Who may write, and what becomes of the lease.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fence<'a> {
    /// The holder of `lease`, for as long as no one has taken the incident from it.
    Holder(&'a Lease, LeaseAfter),
    /// Anyone, once no lease is live at the given time. The attempt (the fencing token)
    /// moves on, so every earlier holder's writes are refused from then on, lapsed lease or
    /// not; the new lease goes to a worker until the time given, or to nobody.
    Takeover(DateTime<Utc>, Option<(&'a str, DateTime<Utc>)>),
}

/// What a holder's write does to its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaseAfter {
    Kept,
    Extended(DateTime<Utc>),
    Released,
}

/// Which incident the write is for.
pub(super) enum Target<'a, 'q> {
    Incident(IncidentId),
    /// The one incident a `SELECT id ...`, written by the closure, picks: a claim.
    Picked(Box<dyn FnOnce(&mut Sql<'q>) + Send + 'a>),
}

/// `UPDATE incidents SET ... WHERE <target> AND <fence>`, built column by column.
pub(super) struct FencedUpdate<'q> {
    sql: Sql<'q>,
    first: bool,
}

impl<'q> FencedUpdate<'q> {
    pub fn new() -> Self {
        Self {
            sql: Sql::new("UPDATE incidents SET "),
            first: true,
        }
    }

    /// `column = value`.
    pub fn set<T: 'q + Encode<'q, Any> + Type<Any>>(
        &mut self,
        column: &str,
        value: T,
    ) -> &mut Self {
        self.column(column).sql.bind(value);
        self
    }

    /// `column = <expression>`, where `value` stands for the bound value.
    pub fn set_with<T: 'q + Encode<'q, Any> + Type<Any>>(
        &mut self,
        column: &str,
        expression: (&str, &str),
        value: T,
    ) -> &mut Self {
        self.column(column)
            .sql
            .push(expression.0)
            .bind(value)
            .push(expression.1);
        self
    }

    /// `column = <literal SQL>`.
    pub fn set_sql(&mut self, column: &str, sql: &str) -> &mut Self {
        self.column(column).sql.push(sql);
        self
    }

    /// The scheduling columns `change` names.
    pub fn schedule(&mut self, change: &ScheduleChange) -> &mut Self {
        if let Some(at) = change.next_attempt_at {
            self.set("next_attempt_at", at.map(|t| t.timestamp_millis()));
        }
        if let Some(at) = change.settle_audit_at {
            self.set("settle_audit_at", at.map(|t| t.timestamp_millis()));
        }
        if let Some(n) = change.step_attempts {
            self.set("step_attempts", i64::from(n));
        }
        self
    }

    fn column(&mut self, column: &str) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.push(", ");
        }
        self.sql.push(column).push(" = ");
        self
    }

    /// Runs the write; `None` when the fence refused it (or no incident was picked). The
    /// row returned holds `returning`.
    pub async fn execute<'c, E>(
        mut self,
        executor: E,
        target: Target<'_, 'q>,
        fence: Fence<'q>,
        returning: &str,
    ) -> Result<Option<AnyRow>, StoreError>
    where
        E: Executor<'c, Database = Any>,
    {
        match fence {
            Fence::Holder(_, LeaseAfter::Kept) => {}
            Fence::Holder(_, LeaseAfter::Extended(until)) => {
                self.set("lease_expires_at", until.timestamp_millis());
            }
            Fence::Holder(_, LeaseAfter::Released) | Fence::Takeover(_, None) => {
                self.set_sql("lease_owner", "NULL")
                    .set_sql("lease_expires_at", "NULL");
            }
            Fence::Takeover(_, Some((owner, until))) => {
                self.set("lease_owner", owner)
                    .set("lease_expires_at", until.timestamp_millis());
            }
        }
        if let Fence::Takeover(..) = fence {
            self.set_sql("attempt", "attempt + 1");
        }
        let q = &mut self.sql;
        match target {
            Target::Incident(id) => q.push(" WHERE id = ").bind(id.0),
            Target::Picked(select) => {
                q.push(" WHERE id = (");
                select(q);
                q.push(")")
            }
        };
        match fence {
            Fence::Holder(lease, _) => {
                q.push(" AND lease_owner = ").bind(lease.owner.as_str());
                q.push(" AND attempt = ").bind(lease.attempt);
            }
            Fence::Takeover(now, _) => {
                q.push(" AND (lease_expires_at IS NULL OR lease_expires_at < ")
                    .bind(now.timestamp_millis())
                    .push(")");
            }
        }
        q.push(" RETURNING ").push(returning);
        Ok(self.sql.fetch_optional(executor).await?)
    }
}
