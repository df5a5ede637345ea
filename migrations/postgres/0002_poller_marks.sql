-- Where each poller got to (e.g. the newest Security Center record seen), across restarts.
CREATE TABLE poller_marks (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
