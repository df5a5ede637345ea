-- The detection time a report stated, kept when intake clamped it (`detected_at` is the
-- clamped time triage judges on).
ALTER TABLE incidents ADD COLUMN stated_detected_at BIGINT;
