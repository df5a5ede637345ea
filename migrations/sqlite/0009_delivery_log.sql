-- One row per settled delivery attempt, in the order they were settled: the durable,
-- ordered cursor the event stream (GET /v1/events) resumes notification deliveries from.
CREATE TABLE delivery_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id   INTEGER NOT NULL REFERENCES outbox (id),
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    channel     TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    -- What the attempt came to: the outbox row's state after it.
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL,
    error       TEXT,
    at          INTEGER NOT NULL
);
