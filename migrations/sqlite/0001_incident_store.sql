-- Incidents, the notifications that opened or sighted them, and the append-only audit log.
-- Times are Unix milliseconds (UTC).

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    access_key_id    TEXT    NOT NULL,
    account_id       TEXT,
    account_name     TEXT,
    user_name        TEXT,
    owner_type       TEXT    NOT NULL CHECK (owner_type IN ('ram_user', 'account', 'sts', 'unknown')),
    leak_url         TEXT,
    detected_at      INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    closed_at        INTEGER,
    attempt          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER
);

-- At most one open incident per key: every further report becomes a sighting of it.
CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents (access_key_id) WHERE closed_at IS NULL;
CREATE INDEX incidents_by_state ON incidents (state, id);
CREATE INDEX incidents_by_key ON incidents (access_key_id, id);
CREATE INDEX incidents_due ON incidents (next_attempt_at) WHERE closed_at IS NULL;

-- Notifications as received, normalized. Never the credentials that authenticated them.
CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    format        TEXT    NOT NULL,
    delivery_id   TEXT    NOT NULL,
    received_at   INTEGER NOT NULL,
    body_sha256   TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('leak', 'activity')),
    access_key_id TEXT    NOT NULL,
    event_id      TEXT,
    normalized    TEXT    NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('created', 'sighting')),
    incident_id   INTEGER NOT NULL REFERENCES incidents (id),
    UNIQUE (source, delivery_id)
);
CREATE INDEX notifications_by_incident ON notifications (incident_id);

CREATE TABLE sightings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    notification_id INTEGER NOT NULL REFERENCES notifications (id),
    source          TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('report', 'activity')),
    observed_at     INTEGER NOT NULL,
    detail          TEXT    NOT NULL
);
CREATE INDEX sightings_by_incident ON sightings (incident_id, id);

-- Each row carries the SHA-256 of its content and of the previous row (see domain::audit).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER REFERENCES incidents (id),
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE
);
CREATE INDEX audit_log_by_incident ON audit_log (incident_id, id);

CREATE TRIGGER audit_log_refuses_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_refuses_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
