-- Fleet-wide rate limits: per account and API class, the time (microseconds since the epoch)
-- at which the next call may go. Every replica on this database takes its call slots here, so
-- the account sees the configured rate whatever the number of replicas.
CREATE TABLE rate_slots (
    account     TEXT    NOT NULL,
    class       TEXT    NOT NULL,
    next_free   BIGINT  NOT NULL,
    PRIMARY KEY (account, class)
);
