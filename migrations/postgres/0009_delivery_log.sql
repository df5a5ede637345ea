-- One row per settled delivery attempt, in the order they were settled: the durable,
-- ordered cursor the event stream (GET /v1/events) resumes notification deliveries from.
-- As SQLite's 0009. Ids are taken under the settle lock (`Backend::begin_settle`) and held
-- to the commit, so they become visible in id order and a reader's cursor skips none.
CREATE TABLE delivery_log (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id   BIGINT  NOT NULL REFERENCES outbox (id),
    incident_id BIGINT  NOT NULL REFERENCES incidents (id),
    channel     TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    -- What the attempt came to: the outbox row's state after it.
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts    BIGINT  NOT NULL,
    error       TEXT,
    at          BIGINT  NOT NULL
);
