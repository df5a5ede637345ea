-- Account-wide ActionTrail audits: the incidents of one account that wait for their audit at
-- the same time share one LookupEvents pass over the whole account (ActionTrail allows two
-- calls a second per account). Queued while incidents join; running once the job's holder
-- has taken its members; done when each member's events are saved, or when the batch was
-- answered per key ('per_key': each incident queries its own key, as alone).
CREATE TABLE audit_batches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    outcome     TEXT    CHECK (outcome IN ('account_wide', 'per_key')),
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX audit_batches_by_account ON audit_batches (account, state);

-- The incidents of a batch, parked until it is done; `events` (a JSON array) is what the
-- account-wide pass found for the incident's key within its own window.
CREATE TABLE audit_batch_waiters (
    incident_id   INTEGER PRIMARY KEY REFERENCES incidents (id),
    batch_id      INTEGER NOT NULL REFERENCES audit_batches (id),
    access_key_id TEXT    NOT NULL,
    window_start  INTEGER NOT NULL,
    events        TEXT
);
CREATE INDEX audit_batch_waiters_by_batch ON audit_batch_waiters (batch_id);
