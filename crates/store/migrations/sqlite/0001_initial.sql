-- Signalpost schema, SQLite flavour. Keep it in step with ../postgres/0001_initial.sql.
--
-- Decimals (prices, lots, money, confidence) are TEXT: SQLite has no exact decimal type, and a NUMERIC or
-- REAL column would silently turn '1.08545' into a binary float. Timestamps are RFC 3339 TEXT in UTC,
-- always written by the application in the same format, so comparing them as text orders them in time.
-- AUTOINCREMENT keeps ids monotonic even after deletes, which the tailing queries rely on.

CREATE TABLE users (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    discord_user_id  TEXT UNIQUE,
    display_name     TEXT NOT NULL,
    role             TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    account_currency TEXT NOT NULL DEFAULT 'USD',
    default_lots     TEXT NOT NULL DEFAULT '0.01',
    created_at       TEXT NOT NULL
);

CREATE TABLE user_settings (
    user_id                       INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    notifications_enabled         INTEGER NOT NULL,
    -- Comma-separated; empty means every timeframe / every pair.
    enabled_timeframes            TEXT NOT NULL,
    preferred_pairs               TEXT NOT NULL,
    min_confidence                TEXT NOT NULL,
    only_ml_enhanced              INTEGER NOT NULL,
    max_notifications_per_day     INTEGER NOT NULL,
    notification_cooldown_minutes INTEGER NOT NULL,
    delivery_kind                 TEXT NOT NULL CHECK (delivery_kind IN ('dm', 'channel')),
    delivery_channel_id           TEXT,
    updated_at                    TEXT NOT NULL,
    CHECK ((delivery_kind = 'channel') = (delivery_channel_id IS NOT NULL))
);

CREATE TABLE signals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol        TEXT NOT NULL,
    timeframe     TEXT,
    side          TEXT NOT NULL CHECK (side IN ('long', 'short')),
    entry_kind    TEXT NOT NULL CHECK (entry_kind IN ('market', 'price', 'zone')),
    entry_price   TEXT,
    entry_low     TEXT,
    entry_high    TEXT,
    stop_loss     TEXT,
    -- JSON array of decimal strings.
    take_profits  TEXT NOT NULL DEFAULT '[]',
    leverage      INTEGER,
    confidence    TEXT,
    source        TEXT NOT NULL,
    model_version TEXT,
    stage1_prob   REAL,
    stage2_prob   REAL,
    created_at    TEXT NOT NULL,
    -- Set by producers that may emit the same signal twice (a restarted scanner): stored once.
    dedup_key     TEXT UNIQUE
);

CREATE TABLE signal_notifications (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    signal_id          INTEGER NOT NULL REFERENCES signals (id),
    user_id            INTEGER NOT NULL REFERENCES users (id),
    -- Copied from the signal so the cooldown check needs no join.
    symbol             TEXT NOT NULL,
    discord_message_id TEXT,
    status             TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    acknowledged       INTEGER NOT NULL DEFAULT 0,
    sent_at            TEXT,
    created_at         TEXT NOT NULL,
    UNIQUE (signal_id, user_id)
);

-- Cooldown: the latest notification of one user for one pair.
CREATE INDEX signal_notifications_user_symbol ON signal_notifications (user_id, symbol, created_at);
-- Daily cap and the user's inbox.
CREATE INDEX signal_notifications_user_created ON signal_notifications (user_id, created_at);
-- The outbox.
CREATE INDEX signal_notifications_queued ON signal_notifications (id) WHERE status = 'queued';

CREATE TABLE user_trades (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('long', 'short')),
    entry           TEXT NOT NULL,
    lots            TEXT NOT NULL,
    stop_loss       TEXT,
    take_profit     TEXT,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'cancelled')),
    opened_at       TEXT NOT NULL,
    closed_at       TEXT,
    exit_price      TEXT,
    close_reason    TEXT CHECK (close_reason IN ('tp_hit', 'sl_hit', 'manual_close', 'timeout')),
    result          TEXT CHECK (result IN ('win', 'loss', 'breakeven')),
    pips            TEXT,
    profit          TEXT,
    notes           TEXT,
    signal_id       INTEGER REFERENCES signals (id),
    -- One trade per Open Trade submit, however often Discord delivers it.
    notification_id INTEGER UNIQUE REFERENCES signal_notifications (id),
    -- profit may stay NULL: no rate may link the quote currency to the account currency yet.
    CHECK (status <> 'closed' OR (closed_at IS NOT NULL AND exit_price IS NOT NULL
                                  AND close_reason IS NOT NULL AND result IS NOT NULL)),
    CHECK (status <> 'cancelled' OR closed_at IS NOT NULL)
);

-- The position monitor: open trades by instrument, and new open trades after a cursor.
CREATE INDEX user_trades_open_symbol ON user_trades (symbol) WHERE status = 'open';
CREATE INDEX user_trades_open_id ON user_trades (id) WHERE status = 'open';
-- A user's history, filtered by status.
CREATE INDEX user_trades_user_status ON user_trades (user_id, status);

CREATE TABLE trade_updates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    trade_id    INTEGER NOT NULL REFERENCES user_trades (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('opened', 'price_snapshot', 'stop_loss_moved', 'take_profit_moved',
                                              'partial_close', 'closed', 'cancelled')),
    price       TEXT,
    stop_loss   TEXT,
    take_profit TEXT,
    note        TEXT,
    created_at  TEXT NOT NULL
);

CREATE INDEX trade_updates_trade ON trade_updates (trade_id, id);

CREATE TABLE last_prices (
    symbol TEXT PRIMARY KEY,
    bid    TEXT NOT NULL,
    ask    TEXT NOT NULL,
    time   TEXT NOT NULL
);
