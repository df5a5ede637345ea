-- Notifications to on-call channels, written in the transaction of the transition that
-- causes them and delivered by a sender that leases them like the worker leases incidents.
CREATE TABLE outbox (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id      BIGINT  NOT NULL REFERENCES incidents (id),
    channel          TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    dedup_key        TEXT    NOT NULL,
    -- The facts of the moment the notice was caused (the incident may have moved on).
    detail           TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    sent_at          BIGINT,
    -- A repeated cause (a replay, a second trip to needs_attention) sends nothing twice.
    UNIQUE (channel, dedup_key)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_by_incident ON outbox (incident_id, id);
