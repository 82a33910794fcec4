-- The dashboard's trade history, its CSV export and its API read one user's trades newest first, page by
-- page after a (opened_at, id) cursor. These indexes serve that order directly, with and without a status
-- filter, so a page reads its rows and stops however many trades the user has; without the second, a
-- status filter made the planner pick (user_id, status) and sort every matching row (seconds at 1M trades).
CREATE INDEX user_trades_user_opened ON user_trades (user_id, opened_at DESC, id DESC);
CREATE INDEX user_trades_user_status_opened ON user_trades (user_id, status, opened_at DESC, id DESC);
