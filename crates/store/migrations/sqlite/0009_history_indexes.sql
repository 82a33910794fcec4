-- The dashboard's trade history (issue 5), part two. Keep it in step with ../postgres/0009_history_indexes.sql.
--
-- 1. Every combination of the history's equality filters (status, result, pair) gets an index that ends in
--    the page order (opened_at DESC, id DESC), so a page, a date range or a cursor reads its rows in order
--    and stops, and a filter matching nothing costs one index probe instead of a walk over every row of the
--    other filters (status=open&pair=GBPUSD walked 250,000 rows at 1M trades). 0007 has the no-filter and
--    status-only ones. Only closed trades have a result, so the result indexes leave out the rest; a query
--    with `result = ?` implies `result IS NOT NULL`, which both planners know.
CREATE INDEX user_trades_user_symbol_opened ON user_trades (user_id, symbol, opened_at DESC, id DESC);
CREATE INDEX user_trades_user_status_symbol_opened ON user_trades (user_id, status, symbol, opened_at DESC, id DESC);
CREATE INDEX user_trades_user_result_opened ON user_trades (user_id, result, opened_at DESC, id DESC)
    WHERE result IS NOT NULL;
CREATE INDEX user_trades_user_result_symbol_opened ON user_trades (user_id, result, symbol, opened_at DESC, id DESC)
    WHERE result IS NOT NULL;
CREATE INDEX user_trades_user_status_result_opened ON user_trades (user_id, status, result, opened_at DESC, id DESC)
    WHERE result IS NOT NULL;
CREATE INDEX user_trades_user_status_result_symbol_opened
    ON user_trades (user_id, status, result, symbol, opened_at DESC, id DESC) WHERE result IS NOT NULL;

-- 2. A per-user version of the trades, bumped in the same transaction as any write to a user's trades, by
--    whichever process or statement made it: the dashboard caches a user's API pages under the version it
--    read *before* the page, and serves the cache only while the version is unchanged.
CREATE TABLE user_trade_versions (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    version INTEGER NOT NULL
);

CREATE TRIGGER user_trades_version_insert AFTER INSERT ON user_trades
BEGIN
    INSERT INTO user_trade_versions (user_id, version) VALUES (NEW.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER user_trades_version_update AFTER UPDATE ON user_trades
BEGIN
    INSERT INTO user_trade_versions (user_id, version) VALUES (NEW.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
    -- A trade moved to another user (nothing does that today) changes the old owner's pages too.
    INSERT INTO user_trade_versions (user_id, version) SELECT OLD.user_id, 1 WHERE OLD.user_id <> NEW.user_id
        ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER user_trades_version_delete AFTER DELETE ON user_trades
BEGIN
    INSERT INTO user_trade_versions (user_id, version) VALUES (OLD.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
