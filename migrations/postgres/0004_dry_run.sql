-- Whether the incident's steps ran in dry run (nothing changed in the cloud): 0 or 1, as in
-- SQLite, so both backends share their statements.
ALTER TABLE incidents ADD COLUMN dry_run BIGINT NOT NULL DEFAULT 0;
