-- Replicas: several daemons on one database. Account-wide work (the MFA sweep, the Security
-- Center poll) runs on one replica at a time under a lease here, never under a process lock.

-- One row per singleton job: who holds it, until when, and a fencing token that grows with
-- every change of holder, so writes of a holder whose lease lapsed are refused.
CREATE TABLE singleton_leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    token      INTEGER NOT NULL
);

-- Each running daemon, with a heartbeat. No secrets: the config digest is a hash per section.
CREATE TABLE replicas (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    account_id    TEXT,
    config_digest TEXT    NOT NULL
);

-- Account-wide MFA sweeps: queued until the job's holder lists the users, then running.
CREATE TABLE mfa_sweeps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);

-- Progress per user, so a crash resumes where it stopped and a failed user is retried alone.
-- 'applying' is the intent record: the holder is about to call UpdateLoginProfile.
CREATE TABLE mfa_sweep_users (
    sweep_id        INTEGER NOT NULL REFERENCES mfa_sweeps (id),
    user_name       TEXT    NOT NULL,
    reset_password  INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'applying', 'done', 'failed')),
    want_mfa        INTEGER NOT NULL DEFAULT 0,
    want_reset      INTEGER NOT NULL DEFAULT 0,
    -- What the user came to: no_console, has_device, mfa_now_required,
    -- mfa_already_required, protected.
    outcome         TEXT,
    password_reset  INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    PRIMARY KEY (sweep_id, user_name)
);

-- The incidents waiting for a sweep: parked (not claimable) until it is done.
CREATE TABLE mfa_sweep_waiters (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
    sweep_id    INTEGER NOT NULL REFERENCES mfa_sweeps (id)
);
CREATE INDEX mfa_sweep_waiters_by_sweep ON mfa_sweep_waiters (sweep_id);
