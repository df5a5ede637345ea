-- Incidents, the notifications that opened or sighted them, and the append-only audit log.
-- Times are Unix milliseconds (UTC); JSON is kept as text, exactly as written.

CREATE TABLE incidents (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    access_key_id    TEXT    NOT NULL,
    account_id       TEXT,
    account_name     TEXT,
    user_name        TEXT,
    owner_type       TEXT    NOT NULL CHECK (owner_type IN ('ram_user', 'account', 'sts', 'unknown')),
    leak_url         TEXT,
    detected_at      BIGINT  NOT NULL,
    state            TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    closed_at        BIGINT,
    attempt          BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT
);

-- At most one open incident per key: every further report becomes a sighting of it.
CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents (access_key_id) WHERE closed_at IS NULL;
CREATE INDEX incidents_by_state ON incidents (state, id);
CREATE INDEX incidents_by_key ON incidents (access_key_id, id);
CREATE INDEX incidents_due ON incidents (next_attempt_at) WHERE closed_at IS NULL;

-- Notifications as received, normalized. Never the credentials that authenticated them.
CREATE TABLE notifications (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        TEXT    NOT NULL,
    format        TEXT    NOT NULL,
    delivery_id   TEXT    NOT NULL,
    received_at   BIGINT  NOT NULL,
    body_sha256   TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('leak', 'activity')),
    access_key_id TEXT    NOT NULL,
    event_id      TEXT,
    normalized    TEXT    NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('created', 'sighting')),
    incident_id   BIGINT  NOT NULL REFERENCES incidents (id),
    UNIQUE (source, delivery_id)
);
CREATE INDEX notifications_by_incident ON notifications (incident_id);

CREATE TABLE sightings (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     BIGINT  NOT NULL REFERENCES incidents (id),
    notification_id BIGINT  NOT NULL REFERENCES notifications (id),
    source          TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('report', 'activity')),
    observed_at     BIGINT  NOT NULL,
    detail          TEXT    NOT NULL
);
CREATE INDEX sightings_by_incident ON sightings (incident_id, id);

-- Each row carries the SHA-256 of its content and of the previous row (see domain::audit).
-- Its id continues the anchored head (0006), never a sequence: a gap would be a lost row.
CREATE TABLE audit_log (
    id          BIGINT  PRIMARY KEY,
    incident_id BIGINT  REFERENCES incidents (id),
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE
);
CREATE INDEX audit_log_by_incident ON audit_log (incident_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_refuses_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

CREATE TRIGGER audit_log_refuses_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- TRUNCATE fires no row trigger; without this it would empty the log unseen.
CREATE TRIGGER audit_log_refuses_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
