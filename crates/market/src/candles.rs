//! Candle files: CSV (optionally gzipped) with a header row, read into validated [`Candle`]s.
//!
//! Columns are found by name, case-insensitively, so exports from brokers, exchanges and pandas load as
//! they are: a time column (`time`, `timestamp`, `date`, `datetime`, `open_time`, `open_time_ms`, or the
//! unnamed first column of a pandas index), `open`, `high`, `low`, `close`, and an optional `volume` (blank
//! or absent reads as 0). Files in the bid/ask layout (`bid_open … bid_close`, `ask_open … ask_close`, as
//! QuantConnect Lean writes them) give the mid price unless [`LoadOptions::price`] asks for one side, and
//! [`load_candle_file`] also returns each bar's closing spread; a file with both sets of columns is read
//! by its bid/ask ones. Times are read by [`crate::timestamp`].
//!
//! A file is all or nothing: the first bad row stops the load with a [`LoadError`] naming the file and line
//! (a number or time that does not parse, a missing column, a bar breaking [`Candle::validate`]). Rows must
//! be in strictly increasing time: a duplicate or an earlier time is an error, because silently keeping one
//! of two bars, or re-sorting, would hide a broken export. Gaps are normal (markets close at weekends and
//! overnight) and are allowed; [`find_gaps`] lists them for whoever wants to know.

use crate::error::{HeaderProblem, LoadError, RowProblem};
use crate::input::{self, CsvInput, Header, Row};
use crate::timestamp::TimeParser;
use chrono::{DateTime, Utc};
use csv::ByteRecord;
use domain::{Candle, Timeframe};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Which price a bid/ask file's candles are built from. Files with a single set of prices ignore it: a
/// side cannot be recovered from prices that never said which side they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PriceSide {
    Bid,
    Ask,
    /// The average of bid and ask, what charts show and what the scanner was trained on.
    #[default]
    Mid,
}

impl PriceSide {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSide::Bid => "bid",
            PriceSide::Ask => "ask",
            PriceSide::Mid => "mid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown price side {0:?}: expected bid, ask or mid")]
pub struct UnknownPriceSide(pub String);

impl std::str::FromStr for PriceSide {
    type Err = UnknownPriceSide;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bid" => Ok(PriceSide::Bid),
            "ask" => Ok(PriceSide::Ask),
            "mid" => Ok(PriceSide::Mid),
            _ => Err(UnknownPriceSide(s.trim().to_string())),
        }
    }
}

impl std::fmt::Display for PriceSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to read a candle file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub price: PriceSide,
}

impl LoadOptions {
    pub fn with_price(price: PriceSide) -> Self {
        LoadOptions { price }
    }
}

/// A loaded candle file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleFile {
    pub candles: Vec<Candle>,
    /// For bid/ask files, each candle's closing spread (`ask_close - bid_close`), index for index; None for
    /// files with one set of prices.
    pub spreads: Option<Vec<Decimal>>,
}

/// Loads the candles of a CSV or gzipped CSV file. See the module docs for the accepted layouts.
pub fn load_candles(path: &Path, options: &LoadOptions) -> Result<Vec<Candle>, LoadError> {
    load_candle_file(path, options).map(|f| f.candles)
}

/// Like [`load_candles`], also keeping the spreads of a bid/ask file.
pub fn load_candle_file(path: &Path, options: &LoadOptions) -> Result<CandleFile, LoadError> {
    let (file, label) = input::open(path)?;
    parse_candle_file(file, &label, options)
}

/// Reads candles from any reader; `file_label` is the name errors give the input.
pub fn parse_candles(reader: impl Read, file_label: &str, options: &LoadOptions) -> Result<Vec<Candle>, LoadError> {
    parse_candle_file(reader, file_label, options).map(|f| f.candles)
}

/// Like [`parse_candles`], also keeping the spreads of a bid/ask file.
pub fn parse_candle_file(reader: impl Read, file_label: &str, options: &LoadOptions) -> Result<CandleFile, LoadError> {
    let mut csv = CsvInput::new(reader, file_label)?;
    let header = csv.header()?;
    let time_col = header
        .time_column()
        .ok_or_else(|| header.error(file_label, HeaderProblem::NoTimeColumn { header: header.text() }))?;
    let layout = Layout::detect(&header, options.price).map_err(|problem| header.error(file_label, problem))?;

    let mut candles = Vec::new();
    let mut spreads = matches!(layout, Layout::BidAsk { .. }).then(Vec::new);
    let mut times = TimeParser::default();
    let mut previous: Option<(DateTime<Utc>, u64)> = None;
    // One record reused for every row: the loop allocates only what it returns.
    let mut record = ByteRecord::new();
    while let Some(line) = csv.next_record(&mut record)? {
        let row = Row { record: &record, header_fields: header.len() };
        let row_error = |problem| LoadError::Row { file: file_label.to_string(), line, problem };
        let (candle, spread) = read_candle(&row, time_col, &layout, &mut times).map_err(row_error)?;
        if let Some((prev_time, prev_line)) = previous {
            if candle.time == prev_time {
                return Err(row_error(RowProblem::DuplicateTime { time: candle.time, first_line: prev_line }));
            }
            if candle.time < prev_time {
                return Err(row_error(RowProblem::OutOfOrder {
                    time: candle.time,
                    previous: prev_time,
                    previous_line: prev_line,
                }));
            }
        }
        previous = Some((candle.time, line));
        candles.push(candle);
        if let (Some(spreads), Some(spread)) = (spreads.as_mut(), spread) {
            spreads.push(spread);
        }
    }
    Ok(CandleFile { candles, spreads })
}

fn read_candle(
    row: &Row,
    time_col: usize,
    layout: &Layout,
    times: &mut TimeParser,
) -> Result<(Candle, Option<Decimal>), RowProblem> {
    let time = row.time(time_col, times)?;
    let (prices, spread, volume) = match layout {
        Layout::Ohlc { columns, volume } => {
            let prices = read_prices(row, columns, &OHLC)?;
            (prices, None, *volume)
        }
        Layout::BidAsk { bid, ask, side, volume } => {
            let (prices, spread) = match side {
                PriceSide::Bid => {
                    let b = read_prices(row, bid, &BID)?;
                    let a = row.decimal(ask[3], BID_ASK_CLOSE[1])?;
                    (b, a - b[3])
                }
                PriceSide::Ask => {
                    let a = read_prices(row, ask, &ASK)?;
                    let b = row.decimal(bid[3], BID_ASK_CLOSE[0])?;
                    (a, a[3] - b)
                }
                PriceSide::Mid => {
                    let b = read_prices(row, bid, &BID)?;
                    let a = read_prices(row, ask, &ASK)?;
                    let mid = std::array::from_fn(|i| input::mid(b[i], a[i]));
                    (mid, a[3] - b[3])
                }
            };
            (prices, Some(spread), *volume)
        }
    };
    let volume = match volume {
        Some(i) => row.decimal_or_zero(i, "volume")?,
        None => Decimal::ZERO,
    };
    let [open, high, low, close] = prices;
    let candle = Candle { time, open, high, low, close, volume };
    candle.validate().map_err(RowProblem::BadCandle)?;
    Ok((candle, spread))
}

fn read_prices(row: &Row, columns: &[usize; 4], names: &[&'static str; 4]) -> Result<[Decimal; 4], RowProblem> {
    Ok([
        row.decimal(columns[0], names[0])?,
        row.decimal(columns[1], names[1])?,
        row.decimal(columns[2], names[2])?,
        row.decimal(columns[3], names[3])?,
    ])
}

const OHLC: [&str; 4] = ["open", "high", "low", "close"];
const BID: [&str; 4] = ["bid_open", "bid_high", "bid_low", "bid_close"];
const ASK: [&str; 4] = ["ask_open", "ask_high", "ask_low", "ask_close"];
const BID_ASK_CLOSE: [&str; 2] = ["bid_close", "ask_close"];

/// Where a file keeps its prices.
enum Layout {
    Ohlc { columns: [usize; 4], volume: Option<usize> },
    BidAsk { bid: [usize; 4], ask: [usize; 4], side: PriceSide, volume: Option<usize> },
}

impl Layout {
    fn detect(header: &Header, side: PriceSide) -> Result<Layout, HeaderProblem> {
        let find_all = |names: &[&'static str; 4]| names.map(|n| header.find(&[n]));
        let volume = header.find(&["volume", "vol", "tick_volume", "tickvol"]);
        let plain = find_all(&OHLC);
        let bid = find_all(&BID);
        let ask = find_all(&ASK);
        // Where a file has both, the bid/ask columns win: they can honour the price side and give spreads.
        if let (Some(bid), Some(ask)) = (all_found(&bid), all_found(&ask)) {
            return Ok(Layout::BidAsk { bid, ask, side, volume });
        }
        if let Some(columns) = all_found(&plain) {
            return Ok(Layout::Ohlc { columns, volume });
        }
        let bid_ask_started = bid.iter().chain(&ask).any(Option::is_some);
        let missing: Vec<&'static str> = if bid_ask_started {
            missing_names(&bid, &BID).chain(missing_names(&ask, &ASK)).collect()
        } else {
            missing_names(&plain, &OHLC).collect()
        };
        Err(HeaderProblem::MissingColumns { missing, header: header.text() })
    }
}

fn all_found(columns: &[Option<usize>; 4]) -> Option<[usize; 4]> {
    Some([columns[0]?, columns[1]?, columns[2]?, columns[3]?])
}

fn missing_names<'a>(
    columns: &'a [Option<usize>; 4],
    names: &'a [&'static str; 4],
) -> impl Iterator<Item = &'static str> + 'a {
    columns.iter().zip(names).filter(|(c, _)| c.is_none()).map(|(_, n)| *n)
}

/// A stretch with no candles between two that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The open time the first missing candle would have had.
    pub from: DateTime<Utc>,
    /// The open time of the candle after the gap.
    pub until: DateTime<Utc>,
    /// How many candles of the timeframe would fit in between.
    pub missing: u64,
}

/// The gaps in a series of `timeframe` candles: every place consecutive candles are more than one
/// timeframe apart. Weekends and holidays show up here; that is expected, not an error.
pub fn find_gaps(candles: &[Candle], timeframe: Timeframe) -> Vec<Gap> {
    let step = timeframe.seconds();
    candles
        .windows(2)
        .filter_map(|pair| {
            let spacing = (pair[1].time - pair[0].time).num_seconds();
            (spacing > step).then(|| Gap {
                from: pair[0].time + timeframe.duration(),
                until: pair[1].time,
                // Slots strictly between the two candles, counting a partial one.
                missing: u64::try_from((spacing + step - 1) / step - 1).unwrap_or(0),
            })
        })
        .collect()
}

/// The timeframe of a series, from the most common spacing between its candles; None when there are
/// fewer than two candles or that spacing is not one of our timeframes (weekly data, say).
pub fn infer_timeframe(candles: &[Candle]) -> Option<Timeframe> {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for pair in candles.windows(2) {
        *counts.entry((pair[1].time - pair[0].time).num_seconds()).or_default() += 1;
    }
    // Ties go to the shorter spacing, so stray double-length bars never outvote the real timeframe.
    let (spacing, _) = counts.into_iter().max_by_key(|&(spacing, n)| (n, std::cmp::Reverse(spacing)))?;
    Timeframe::ALL.into_iter().find(|tf| tf.seconds() == spacing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn parse(text: &str) -> Result<CandleFile, LoadError> {
        parse_candle_file(text.as_bytes(), "t.csv", &LoadOptions::default())
    }

    fn candle_at(secs: i64) -> Candle {
        Candle {
            time: Utc.timestamp_opt(secs, 0).unwrap(),
            open: dec!(1),
            high: dec!(1),
            low: dec!(1),
            close: dec!(1),
            volume: dec!(0),
        }
    }

    #[test]
    fn plain_file_with_optional_volume() {
        let f = parse("Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1.5,2,1,1\n").unwrap();
        assert_eq!(f.spreads, None);
        assert_eq!(f.candles.len(), 2);
        assert_eq!(f.candles[0].volume, Decimal::ZERO);
        assert_eq!(f.candles[1].close, dec!(1));
        let f = parse("time,open,high,low,close,volume\n1700000000,1,2,0.5,1.5,\n").unwrap();
        assert_eq!(f.candles[0].volume, Decimal::ZERO);
    }

    #[test]
    fn columns_in_any_order_and_extra_columns_ignored() {
        let f = parse("Close,Adj Close,Low,High,Open,Volume,Date\n1.5,9,0.5,2,1,7,2024-01-02\n").unwrap();
        let c = &f.candles[0];
        assert_eq!((c.open, c.high, c.low, c.close, c.volume), (dec!(1), dec!(2), dec!(0.5), dec!(1.5), dec!(7)));
    }

    #[test]
    fn bid_ask_layout_gives_mid_bid_or_ask_and_spreads() {
        let text = "time,bid_open,bid_high,bid_low,bid_close,ask_open,ask_high,ask_low,ask_close\n\
                    20240102 00:00,1.0,1.4,0.9,1.2,1.2,1.6,1.1,1.3\n";
        let mid = parse(text).unwrap();
        let c = &mid.candles[0];
        assert_eq!((c.open, c.high, c.low, c.close), (dec!(1.1), dec!(1.5), dec!(1.0), dec!(1.25)));
        assert_eq!(mid.spreads, Some(vec![dec!(0.1)]));
        let bid = parse_candle_file(text.as_bytes(), "t", &LoadOptions::with_price(PriceSide::Bid)).unwrap();
        assert_eq!(bid.candles[0].close, dec!(1.2));
        assert_eq!(bid.spreads, Some(vec![dec!(0.1)]));
        let ask = parse_candle_file(text.as_bytes(), "t", &LoadOptions::with_price(PriceSide::Ask)).unwrap();
        assert_eq!(ask.candles[0].high, dec!(1.6));
        assert_eq!(ask.spreads, Some(vec![dec!(0.1)]));
    }

    #[test]
    fn bid_ask_columns_win_over_plain_ones() {
        let text = "time,open,high,low,close,bid_open,bid_high,bid_low,bid_close,ask_open,ask_high,ask_low,ask_close\n\
                    2024-01-02,9,9,9,9,1.0,1.4,0.9,1.2,1.2,1.6,1.1,1.3\n";
        let bid = parse_candle_file(text.as_bytes(), "t", &LoadOptions::with_price(PriceSide::Bid)).unwrap();
        assert_eq!(bid.candles[0].open, dec!(1.0));
        assert_eq!(bid.spreads, Some(vec![dec!(0.1)]));
    }

    #[test]
    fn header_problems_name_what_is_missing() {
        let err = parse("when,open,high,low,close\n").unwrap_err();
        assert!(matches!(err, LoadError::Header { problem: HeaderProblem::NoTimeColumn { .. }, .. }));
        let err = parse("time,open,high,low\n").unwrap_err();
        assert_eq!(err.to_string(), "t.csv line 1: missing column close: the header is \"time,open,high,low\"");
        let err = parse("time,bid_open,bid_high,bid_low,bid_close,ask_open\n").unwrap_err();
        assert!(err.to_string().contains("missing column ask_high, ask_low, ask_close"), "{err}");
    }

    #[test]
    fn header_only_is_an_empty_series() {
        assert!(parse("time,open,high,low,close\n").unwrap().candles.is_empty());
    }

    #[test]
    fn row_errors_name_file_line_and_problem() {
        let head = "time,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n";
        let cases = [
            ("2024-01-03,1,2,0.5,abc", "t.csv line 3: close \"abc\" is not a number"),
            ("2024-01-03,1,2,,1", "t.csv line 3: low is empty"),
            ("2024-01-03,1,2,0.5", "t.csv line 3: missing column close: the row has 4 fields, the header has 5"),
            ("tomorrow,1,2,0.5,1", "t.csv line 3: time \"tomorrow\" is not a date/time"),
            ("2024-01-03,1,0.9,0.5,1", "t.csv line 3: bad candle: high 0.9 is below open, close or low"),
            ("2024-01-03,0,2,0.5,1", "t.csv line 3: bad candle: prices must be positive"),
            ("2024-01-02,1,2,0.5,1", "t.csv line 3: duplicate time 2024-01-02T00:00:00Z: line 2 has the same time"),
            (
                "2024-01-01,1,2,0.5,1",
                "t.csv line 3: time 2024-01-01T00:00:00Z is earlier than 2024-01-02T00:00:00Z on line 2",
            ),
        ];
        for (row, want) in cases {
            let err = parse(&format!("{head}{row}\n")).unwrap_err();
            assert!(err.to_string().starts_with(want), "{row}: {err}");
            assert_eq!(err.line(), Some(3));
            assert_eq!(err.file(), "t.csv");
        }
    }

    #[test]
    fn line_numbers_count_blank_lines() {
        let err = parse("time,open,high,low,close\n\n2024-01-02,1,2,0.5,x\n").unwrap_err();
        assert_eq!(err.line(), Some(3), "{err}");
    }

    #[test]
    fn gaps_and_timeframe() {
        let hour = 3600;
        let candles: Vec<_> = [0, 1, 2, 5, 6, 7, 8].into_iter().map(|h| candle_at(h * hour)).collect();
        assert_eq!(infer_timeframe(&candles), Some(Timeframe::H1));
        let gaps = find_gaps(&candles, Timeframe::H1);
        assert_eq!(gaps, vec![Gap { from: candle_at(3 * hour).time, until: candle_at(5 * hour).time, missing: 2 }]);
        assert!(find_gaps(&candles[..3], Timeframe::H1).is_empty());
        assert_eq!(infer_timeframe(&candles[..1]), None);
        let weekly: Vec<_> = (0..5).map(|w| candle_at(w * 7 * 86_400)).collect();
        assert_eq!(infer_timeframe(&weekly), None);
        // One spacing of each: the shorter wins.
        let mixed = [candle_at(0), candle_at(300), candle_at(300 + 900)];
        assert_eq!(infer_timeframe(&mixed), Some(Timeframe::M5));
    }

    #[test]
    fn price_side_parses() {
        assert_eq!("BID".parse::<PriceSide>().unwrap(), PriceSide::Bid);
        assert_eq!(" ask ".parse::<PriceSide>().unwrap(), PriceSide::Ask);
        assert!("last".parse::<PriceSide>().is_err());
    }
}
