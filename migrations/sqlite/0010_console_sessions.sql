-- Console sessions, in the database so that every replica on it honours a sign-in made on
-- any of them, and a sign-out on one ends it everywhere. Only a SHA-256 of the session's
-- secret is kept (the browser's cookie holds the secret); the CSRF token is derived from the
-- secret, so nothing here lets a reader act as a session. Expired rows are purged at sign-in.
CREATE TABLE console_sessions (
    secret_sha256 TEXT    PRIMARY KEY,
    -- The configured API token the session was opened with, as the audit log names it.
    token_name    TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'operator')),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
