-- One-time codes that tie a Discord account to a Signalpost user (`/link`). Keep it in step with
-- ../postgres/0002_link_codes.sql.
--
-- Only a hash of each code is stored, so someone who can read the database cannot redeem a pending code.
-- A code is spent by setting used_at; expires_at bounds how long an unspent one is good for.

CREATE TABLE link_codes (
    code_hash          TEXT PRIMARY KEY,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at         TEXT NOT NULL,
    used_at            TEXT,
    used_by_discord_id TEXT,
    created_at         TEXT NOT NULL,
    CHECK ((used_at IS NULL) = (used_by_discord_id IS NULL))
);

-- A new code replaces the user's older ones.
CREATE INDEX link_codes_user ON link_codes (user_id);
