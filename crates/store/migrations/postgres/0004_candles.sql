-- Closed candles, so a restart backfills only what it missed, indicators warm up from the store, and any
-- process (not only the one that scanned a candle) can show recent history (Details' chart). Keep it in step
-- with ../sqlite/0004_candles.sql.

CREATE TABLE candles (
    symbol    TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    open_time TIMESTAMPTZ NOT NULL,
    open      NUMERIC NOT NULL,
    high      NUMERIC NOT NULL,
    low       NUMERIC NOT NULL,
    close     NUMERIC NOT NULL,
    volume    NUMERIC NOT NULL,
    -- One row per candle: a replayed or re-fetched candle replaces its row instead of adding one. The key's
    -- index also serves "the latest N before a time" and "the last candle" for one series.
    PRIMARY KEY (symbol, timeframe, open_time)
);
