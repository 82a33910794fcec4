-- The dashboard's sign-in lockout, shared by every process on the database. Keep it in step with
-- ../postgres/0010_sign_in_failures.sql.
--
-- One row per failed sign-in, keyed by the username as typed (trimmed, lower-cased), whether or not such a
-- user exists: a guesser is slowed the same either way. Rows older than the lockout window are deleted as new
-- failures are recorded, so the table holds about a window's worth of failures.
CREATE TABLE sign_in_failures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    username_key TEXT NOT NULL,
    failed_at    TEXT NOT NULL
);

CREATE INDEX sign_in_failures_key ON sign_in_failures (username_key, failed_at);
CREATE INDEX sign_in_failures_time ON sign_in_failures (failed_at);
