-- The step whose approval was asked for and not yet given, kept beside the findings so that
-- listing the incidents waiting for an approval needs no JSON functions. Incidents written
-- before the column existed get it from their findings' `approval_<step>` records.
ALTER TABLE incidents ADD COLUMN approval_pending TEXT;

UPDATE incidents SET approval_pending = (
    SELECT substr(a.key, length('approval_') + 1)
    FROM jsonb_each(incidents.findings::jsonb) AS a
    WHERE a.key LIKE 'approval!_%' ESCAPE '!'
      AND a.value ->> 'requested_at' IS NOT NULL
      AND a.value ->> 'granted_at' IS NULL
    ORDER BY a.value ->> 'requested_at' DESC
    LIMIT 1
);
