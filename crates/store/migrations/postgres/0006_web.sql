-- The dashboard's sign-in (issue 5). Keep it in step with ../sqlite/0006_web.sql.
--
-- Secrets are stored only as something that cannot be replayed: session ids and one-time sign-in tokens as
-- their SHA-256, passwords as argon2 PHC strings. The raw values live only in the browser's cookie, the
-- printed link, or the person's head.

-- A local account name and password, for sign-in without Discord. A NULL hash means the account can sign
-- in only through a one-time link until a password is set.
CREATE TABLE local_credentials (
    user_id       BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Browser sessions. A row without a user is a pre-session: it carries the CSRF token of the sign-in form and,
-- during a Discord sign-in, the OAuth state and PKCE verifier the callback is checked against.
CREATE TABLE web_sessions (
    id_hash        TEXT PRIMARY KEY,
    user_id        BIGINT REFERENCES users (id) ON DELETE CASCADE,
    csrf_token     TEXT NOT NULL,
    oauth_state    TEXT,
    oauth_verifier TEXT,
    next_path      TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    last_seen      TIMESTAMPTZ NOT NULL,
    CHECK ((oauth_state IS NULL) = (oauth_verifier IS NULL))
);

CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- One-time sign-in links (first run, `signalpost users sign-in-link`). Spent by setting used_at.
CREATE TABLE sign_in_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX sign_in_tokens_user ON sign_in_tokens (user_id);
