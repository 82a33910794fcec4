-- Closed candles, so a restart backfills only what it missed, indicators warm up from the store, and any
-- process (not only the one that scanned a candle) can show recent history (Details' chart). Keep it in step
-- with ../postgres/0004_candles.sql.
--
-- Decimals are TEXT (see 0001): exact, never binary floats. open_time is RFC 3339 TEXT in UTC like every
-- other timestamp here, so ordering by it as text orders by time.

CREATE TABLE candles (
    symbol    TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    open_time TEXT NOT NULL,
    open      TEXT NOT NULL,
    high      TEXT NOT NULL,
    low       TEXT NOT NULL,
    close     TEXT NOT NULL,
    volume    TEXT NOT NULL,
    -- One row per candle: a replayed or re-fetched candle replaces its row instead of adding one.
    PRIMARY KEY (symbol, timeframe, open_time)
) WITHOUT ROWID;
