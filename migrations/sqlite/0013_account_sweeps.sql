-- Many accounts: an MFA sweep covers one account's RAM users. '' is the home account (akguard's
-- own identity's), as every sweep before this migration was; another account is its id.
ALTER TABLE mfa_sweeps ADD COLUMN account TEXT NOT NULL DEFAULT '';
CREATE INDEX mfa_sweeps_by_account ON mfa_sweeps (account, state);
