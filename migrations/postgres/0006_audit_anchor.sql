-- The audit chain's anchor: the last row's id and hash and the number of rows, moved by
-- triggers with every append in the same statement, so a removed tail no longer goes
-- unnoticed (see domain::audit::walk). The same rules as SQLite's 0006; PostgreSQL fires
-- row-level AFTER triggers only at the end of a statement, so the head moves in the BEFORE
-- trigger and the check that it points at a real row waits for the commit.
CREATE TABLE audit_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id   BIGINT  NOT NULL,
    last_hash TEXT    NOT NULL,
    row_count BIGINT  NOT NULL
);

INSERT INTO audit_head (singleton, last_id, last_hash, row_count)
SELECT 1,
       COALESCE(MAX(id), 0),
       COALESCE((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1),
                '0000000000000000000000000000000000000000000000000000000000000000'),
       COUNT(*)
FROM audit_log;

-- A new row must continue the anchored head (no fork, no reused id, no append without an
-- anchor); the head moves to it.
CREATE FUNCTION audit_log_extend_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_head FOR UPDATE;
    IF NOT FOUND OR NEW.id <= head.last_id OR NEW.prev_hash IS DISTINCT FROM head.last_hash THEN
        RAISE EXCEPTION 'audit_log rows must extend the anchored head';
    END IF;
    UPDATE audit_head SET last_id = NEW.id, last_hash = NEW.hash, row_count = row_count + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_extend_head();

CREATE FUNCTION audit_head_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_head has one row, moved only by appends';
END
$$;

CREATE TRIGGER audit_head_refuses_insert BEFORE INSERT ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_is_fixed();

CREATE TRIGGER audit_head_refuses_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_is_fixed();

CREATE TRIGGER audit_head_refuses_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_is_fixed();

-- The head moves forward only, one row at a time...
CREATE FUNCTION audit_head_move_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.singleton IS DISTINCT FROM OLD.singleton
       OR NEW.row_count IS DISTINCT FROM OLD.row_count + 1
       OR NEW.last_id <= OLD.last_id THEN
        RAISE EXCEPTION 'audit_head moves only forward, to the row just appended';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_head_moves_forward BEFORE UPDATE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_move_forward();

-- ...to a row that exists by the commit and links to where the head was.
CREATE FUNCTION audit_head_point_at_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_log
                   WHERE id = NEW.last_id AND hash = NEW.last_hash AND prev_hash = OLD.last_hash) THEN
        RAISE EXCEPTION 'audit_head moves only forward, to the row just appended';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER audit_head_points_at_row AFTER UPDATE ON audit_head
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit_head_point_at_row();
