-- Provider channels and the messages they post (issue 6). Keep it in step with ../sqlite/0011_providers.sql.
--
-- A message is stored as it first arrived, with its SHA-256, and is never rewritten: an edit adds a revision
-- (the new text and hash) and sets `edited_at`, a deletion sets `deleted_at`, so a provider cannot quietly
-- rewrite its history. TradingView webhook deliveries are stored here too, under the pseudo-channel
-- `tradingview` with the alert id (or the body's hash) as message id: the same UNIQUE key deduplicates them.
CREATE TABLE provider_channels (
    id         BIGSERIAL PRIMARY KEY,
    channel_id TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE provider_messages (
    id          BIGSERIAL PRIMARY KEY,
    channel_id  TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    author      TEXT,
    content     TEXT NOT NULL,
    -- Lower-case hex SHA-256 of `content` as received.
    hash        TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('open', 'update', 'close', 'noise', 'refused')),
    -- `signal <id>`, `refused: <reason>`, `noise`, or what an update asked for.
    outcome     TEXT NOT NULL,
    signal_id   BIGINT REFERENCES signals (id),
    edited_at   TIMESTAMPTZ,
    deleted_at  TIMESTAMPTZ,
    UNIQUE (channel_id, message_id)
);

CREATE INDEX provider_messages_channel ON provider_messages (channel_id, received_at);

CREATE TABLE provider_message_revisions (
    id         BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES provider_messages (id) ON DELETE CASCADE,
    content    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL
);

CREATE INDEX provider_message_revisions_message ON provider_message_revisions (message_id, id);
