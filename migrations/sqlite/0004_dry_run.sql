-- Whether the incident's steps ran in dry run (nothing changed in the cloud).
ALTER TABLE incidents ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0;
