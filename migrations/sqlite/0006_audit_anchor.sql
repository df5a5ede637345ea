-- The audit chain's anchor: the last row's id and hash and the number of rows. Triggers move
-- it with every append, in the same statement, so a removed tail no longer goes unnoticed
-- (see domain::audit::walk). An existing log anchors at its current last row.
CREATE TABLE audit_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id   INTEGER NOT NULL,
    last_hash TEXT    NOT NULL,
    row_count INTEGER NOT NULL
);

INSERT INTO audit_head (singleton, last_id, last_hash, row_count)
SELECT 1,
       IFNULL(MAX(id), 0),
       IFNULL((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1),
              '0000000000000000000000000000000000000000000000000000000000000000'),
       COUNT(*)
FROM audit_log;

-- A new row must continue the anchored head: no fork, no reused id, no append without an anchor.
CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
WHEN NEW.id <= IFNULL((SELECT last_id FROM audit_head), NEW.id)
  OR NEW.prev_hash IS NOT (SELECT last_hash FROM audit_head)
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows must extend the anchored head');
END;

CREATE TRIGGER audit_log_moves_head AFTER INSERT ON audit_log
BEGIN
    UPDATE audit_head SET last_id = NEW.id, last_hash = NEW.hash, row_count = row_count + 1;
END;

CREATE TRIGGER audit_head_refuses_insert BEFORE INSERT ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head has one row, moved only by appends');
END;

CREATE TRIGGER audit_head_refuses_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head has one row, moved only by appends');
END;

-- The head moves forward only, one linked row at a time, to a row that exists.
CREATE TRIGGER audit_head_moves_forward BEFORE UPDATE ON audit_head
WHEN NEW.singleton IS NOT OLD.singleton
  OR NEW.row_count IS NOT OLD.row_count + 1
  OR NEW.last_id <= OLD.last_id
  OR NOT EXISTS (SELECT 1 FROM audit_log
                 WHERE id = NEW.last_id AND hash = NEW.last_hash AND prev_hash = OLD.last_hash)
BEGIN
    SELECT RAISE(ABORT, 'audit_head moves only forward, to the row just appended');
END;
