-- Followers, copy orders and partial closes (issue 6). Keep it in step with ../sqlite/0012_followers.sql.
--
-- A follower is one user following one provider channel (or `tradingview`, the webhook pseudo-channel)
-- through one broker. Its API keys are stored only sealed (AES-256-GCM, the key outside the database); its
-- risk settings are the JSON of `risk::FollowerRiskSettings`, validated again whenever they are read.
CREATE TABLE followers (
    id                 BIGSERIAL PRIMARY KEY,
    user_id            BIGINT NOT NULL REFERENCES users (id),
    provider_channel   TEXT NOT NULL,
    broker             TEXT NOT NULL CHECK (broker IN ('paper', 'binance_spot', 'binance_futures', 'alpaca')),
    sealed_credentials BYTEA,
    risk_settings      TEXT NOT NULL,
    -- The account size the sizing uses, in `currency`.
    balance            NUMERIC NOT NULL,
    currency           TEXT NOT NULL,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, provider_channel)
);

-- The copier's question for every provider signal: who follows this channel.
CREATE INDEX followers_channel ON followers (provider_channel, id) WHERE enabled;

-- One row per (follower, signal), written `pending` before the broker is called: the UNIQUE key is what
-- stops two copiers (or a restarted one) from placing a signal twice for a follower, and the client order id
-- lets a re-driven order be recognised by the broker.
CREATE TABLE copy_orders (
    id              BIGSERIAL PRIMARY KEY,
    follower_id     BIGINT NOT NULL REFERENCES followers (id),
    user_id         BIGINT NOT NULL REFERENCES users (id),
    signal_id       BIGINT NOT NULL REFERENCES signals (id),
    client_order_id TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'placed', 'refused', 'rejected', 'failed')),
    -- The risk gate that refused it.
    gate            TEXT,
    reason          TEXT,
    broker_order_id TEXT,
    trade_id        BIGINT REFERENCES user_trades (id),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (follower_id, signal_id),
    CHECK (status <> 'placed' OR trade_id IS NOT NULL)
);

CREATE INDEX copy_orders_signal ON copy_orders (signal_id, id);
CREATE INDEX copy_orders_user ON copy_orders (user_id, created_at DESC, id DESC);
CREATE INDEX copy_orders_pending ON copy_orders (created_at, id) WHERE status = 'pending';

-- A partial close splits a trade: the closed part is a trade row of its own, naming the trade it came from,
-- so a follower's realised P&L can follow it back to the copy order that opened the original.
ALTER TABLE user_trades ADD COLUMN partial_of BIGINT REFERENCES user_trades (id);
CREATE INDEX user_trades_partial_of ON user_trades (partial_of) WHERE partial_of IS NOT NULL;

-- The Discord message a provider message replied to: which signal an update ("close half", "move SL to
-- entry") refers to.
ALTER TABLE provider_messages ADD COLUMN reply_to TEXT;
