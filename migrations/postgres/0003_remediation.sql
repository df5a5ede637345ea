-- What the remediation worker needs on each incident.
ALTER TABLE incidents ADD COLUMN path TEXT;
ALTER TABLE incidents ADD COLUMN reason TEXT;
ALTER TABLE incidents ADD COLUMN resume_step TEXT;
ALTER TABLE incidents ADD COLUMN step_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN last_error TEXT;
ALTER TABLE incidents ADD COLUMN contained_at BIGINT;
ALTER TABLE incidents ADD COLUMN settle_audit_at BIGINT;
ALTER TABLE incidents ADD COLUMN parent_incident_id BIGINT REFERENCES incidents (id);
ALTER TABLE incidents ADD COLUMN findings TEXT NOT NULL DEFAULT '{}';

CREATE INDEX incidents_settle_due ON incidents (settle_audit_at) WHERE settle_audit_at IS NOT NULL;
