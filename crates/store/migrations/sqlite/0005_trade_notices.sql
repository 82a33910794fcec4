-- Trade notices (close reports and "still running" updates sent to a trade's owner) and the setting that
-- asks for the running updates. Keep it in step with ../postgres/0005_trade_notices.sql.

-- Minutes between "still running" updates of an open trade; 0 turns them off. Old rows read as off.
ALTER TABLE user_settings ADD COLUMN running_update_minutes INTEGER NOT NULL DEFAULT 0;

-- The trade-notice outbox. A close notice is written in the transaction that closes the trade, so the close
-- and its report commit together; a running update is written once per (trade, slot) however many
-- processes tick. claimed_until is a lease: a sender claims a row before sending it, so two processes never
-- send it at once, and a crashed sender's claim runs out and the row is sent again. After a transient
-- failure the lease is set to when the next attempt is due, so the backoff is shared by every process.
CREATE TABLE trade_notices (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    trade_id           INTEGER NOT NULL REFERENCES user_trades (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL CHECK (kind IN ('closed', 'cancelled', 'running')),
    -- Running updates: how many whole periods the trade had been open; 0 for the close notices.
    slot               INTEGER NOT NULL DEFAULT 0,
    -- Running updates: the live price, pips and account-currency profit when the update was queued.
    price              TEXT,
    pips               TEXT,
    profit             TEXT,
    status             TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed', 'expired')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    claimed_until      TEXT,
    discord_message_id TEXT,
    created_at         TEXT NOT NULL,
    sent_at            TEXT,
    UNIQUE (trade_id, kind, slot)
);

-- The sender's queue.
CREATE INDEX trade_notices_queued ON trade_notices (id) WHERE status = 'queued';
