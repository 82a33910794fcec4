-- The dashboard's trade history (issue 5), part two. Keep it in step with ../sqlite/0009_history_indexes.sql.
--
-- 1. Every combination of the history's equality filters (status, result, pair) gets an index that ends in
--    the page order (opened_at DESC, id DESC), so a page, a date range or a cursor reads its rows in order
--    and stops, and a filter matching nothing costs one index probe instead of a walk over every row of the
--    other filters (status=open&pair=GBPUSD walked 250,000 rows at 1M trades). 0007 has the no-filter and
--    status-only ones. Only closed trades have a result, so the result indexes leave out the rest; a query
--    with `result = $n` implies `result IS NOT NULL`, which both planners know.
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
--    read *before* the page, and serves the cache only while the version is unchanged. The row lock of the
--    upsert orders concurrent writers of one user's trades, so a version is never visible before its rows.
--    Statement-level triggers keep a bulk import at one upsert per user and statement, not per row; the
--    users are locked in id order so two statements touching the same users cannot deadlock each other.
CREATE TABLE user_trade_versions (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    version BIGINT NOT NULL
);

CREATE FUNCTION bump_user_trade_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO user_trade_versions AS v (user_id, version)
        SELECT user_id, 1 FROM (SELECT user_id FROM changed UNION SELECT user_id FROM changed_before) AS u
        ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1;
    ELSE
        INSERT INTO user_trade_versions AS v (user_id, version)
        SELECT DISTINCT user_id, 1 FROM changed ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_trades_version_insert AFTER INSERT ON user_trades
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_user_trade_versions();
CREATE TRIGGER user_trades_version_update AFTER UPDATE ON user_trades
    REFERENCING OLD TABLE AS changed_before NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_user_trade_versions();
CREATE TRIGGER user_trades_version_delete AFTER DELETE ON user_trades
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_user_trade_versions();
