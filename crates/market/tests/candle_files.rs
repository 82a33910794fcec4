//! Loading the real candle files in tests/data (see its SOURCE.md): every accepted layout and time format,
//! and every kind of bad input, whose errors must name the file and the line.

use chrono::{DateTime, TimeZone, Utc};
use domain::{Candle, Timeframe};
use market::{
    HeaderProblem, LoadError, LoadOptions, PriceSide, RowProblem, find_gaps, infer_timeframe, load_candle_file,
    load_candles, parse_candles,
};
use rust_decimal_macros::dec;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn load(name: &str) -> Vec<Candle> {
    load_candles(&data(name), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(name: &str) -> LoadError {
    match load_candles(&data(name), &LoadOptions::default()) {
        Ok(c) => panic!("{name} loaded {} candles, expected an error", c.len()),
        Err(e) => e,
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Asserts the error reads `<path> line <line>: <rest…>`.
fn assert_names_line(err: &LoadError, name: &str, line: u64, rest: &str) {
    let want = format!("{} line {line}: {rest}", data(name).display());
    assert!(err.to_string().starts_with(&want), "got:  {err}\nwant: {want}…");
    assert_eq!(err.line(), Some(line));
}

#[test]
fn lean_bid_ask_gzip_gives_mid_by_default_and_keeps_spreads() {
    let file = load_candle_file(&data("lean_oanda_EURUSD_H1_head300.csv.gz"), &LoadOptions::default()).unwrap();
    assert_eq!(file.candles.len(), 300);
    let first = &file.candles[0];
    // 20070101 21:00,1.31927,1.31955,1.3187,1.31935,0,1.32027,1.32055,1.3197,1.32035,0
    assert_eq!(first.time, utc(2007, 1, 1, 21, 0));
    assert_eq!(
        (first.open, first.high, first.low, first.close, first.volume),
        (dec!(1.31977), dec!(1.32005), dec!(1.3192), dec!(1.31985), dec!(0))
    );
    let spreads = file.spreads.unwrap();
    assert_eq!(spreads.len(), 300);
    assert_eq!(spreads[0], dec!(0.001));
    assert_eq!(infer_timeframe(&file.candles), Some(Timeframe::H1));
    // The first Friday close to Sunday open is a gap, not an error.
    let gaps = find_gaps(&file.candles, Timeframe::H1);
    assert!(gaps.iter().any(|g| g.from == utc(2007, 1, 5, 22, 0) && g.missing == 48), "{gaps:?}");
}

#[test]
fn lean_bid_and_ask_sides() {
    let path = data("lean_oanda_EURUSD_H1_head300.csv.gz");
    let bid = load_candles(&path, &LoadOptions::with_price(PriceSide::Bid)).unwrap();
    let ask = load_candles(&path, &LoadOptions::with_price(PriceSide::Ask)).unwrap();
    assert_eq!((bid[0].open, bid[0].close), (dec!(1.31927), dec!(1.31935)));
    assert_eq!((ask[0].open, ask[0].close), (dec!(1.32027), dec!(1.32035)));
    assert_eq!(bid.len(), 300);
    assert!(bid.iter().zip(&ask).all(|(b, a)| b.time == a.time && b.close <= a.close));
}

#[test]
fn epoch_seconds_milliseconds_and_rfc3339_files_match_the_lean_bid_prices() {
    let lean =
        load_candles(&data("lean_oanda_EURUSD_H1_head300.csv.gz"), &LoadOptions::with_price(PriceSide::Bid)).unwrap();
    let want = &lean[..48];
    for name in [
        "lean_EURUSD_H1_bid_epoch_ms.csv",
        "lean_EURUSD_H1_bid_epoch_s.csv",
        "lean_EURUSD_H1_bid_rfc3339.csv",
        // gzip detected by its magic bytes, not its name
        "gzipped_without_gz_extension.csv",
    ] {
        assert_eq!(load(name), want, "{name}");
    }
}

#[test]
fn dukascopy_style_dotted_times_with_fractions() {
    let candles = load("gym-anytrading_EURUSD_H1_ASK_head300.csv");
    assert_eq!(candles.len(), 300);
    // 01.01.2017 22:00:00.000,1.05236,1.05253,1.05221,1.05227,143539993.3
    assert_eq!(candles[0].time, utc(2017, 1, 1, 22, 0));
    assert_eq!(candles[0].volume, dec!(143539993.3));
    assert_eq!(infer_timeframe(&candles), Some(Timeframe::H1));
}

#[test]
fn bom_and_minute_times() {
    let candles = load("stockindicators_intraday_head300.csv");
    assert_eq!(candles.len(), 300);
    assert_eq!(candles[0].time, utc(2020, 12, 15, 9, 30));
    assert_eq!(candles[0].open, dec!(367.4));
    assert_eq!(infer_timeframe(&candles), Some(Timeframe::M1));
}

#[test]
fn us_slashed_dates_with_bom() {
    let candles = load("stockindicators_spx_head300.csv");
    assert_eq!(candles.len(), 300);
    // 1/2/1990,353.4,359.69,351.98,359.69,0
    assert_eq!(candles[0].time, utc(1990, 1, 2, 0, 0));
    assert_eq!(candles[0].close, dec!(359.69));
    assert_eq!(infer_timeframe(&candles), Some(Timeframe::D1));
}

#[test]
fn iso_dates_and_the_pandas_index_column() {
    let plain = load("stockindicators_default.csv");
    assert_eq!(plain.len(), 502);
    assert_eq!(plain[0].time, utc(2017, 1, 3, 0, 0));
    assert_eq!(plain[501].time, utc(2018, 12, 31, 0, 0));
    assert_eq!(plain[0].volume, dec!(96708880));
    let pandas = load("stockindicators_default_pandas_head50.csv");
    assert_eq!(pandas, plain[..50]);
}

#[test]
fn parse_from_memory_uses_the_label() {
    let err = parse_candles(&b"time,open,high,low,close\nx,1,1,1,1\n"[..], "upload.csv", &LoadOptions::default())
        .unwrap_err();
    assert!(err.to_string().starts_with("upload.csv line 2: time \"x\""), "{err}");
}

#[test]
fn bad_number() {
    let err = load_err("bad_number.csv");
    assert_names_line(&err, "bad_number.csv", 4, "close \"abc\" is not a number");
}

#[test]
fn bad_time() {
    let err = load_err("bad_time.csv");
    assert_names_line(&err, "bad_time.csv", 3, "time \"2024-13-45 01:00\" is not a date/time in a known format");
}

#[test]
fn missing_field_in_a_row() {
    let err = load_err("missing_field.csv");
    assert_names_line(&err, "missing_field.csv", 5, "missing column low: the row has 3 fields, the header has 6");
}

#[test]
fn missing_column_in_the_header() {
    let err = load_err("missing_header_column.csv");
    assert_names_line(&err, "missing_header_column.csv", 1, "missing column close");
    assert!(matches!(err, LoadError::Header { problem: HeaderProblem::MissingColumns { .. }, .. }));
}

#[test]
fn duplicate_time() {
    let err = load_err("duplicate_time.csv");
    assert_names_line(&err, "duplicate_time.csv", 4, "duplicate time 2024-01-02T01:00:00Z: line 3 has the same time");
}

#[test]
fn high_below_low() {
    let err = load_err("high_below_low.csv");
    assert_names_line(&err, "high_below_low.csv", 3, "bad candle: high 1.0990 is below open, close or low");
}

#[test]
fn real_out_of_order_file() {
    // Stock.Indicators' mismatch.csv jumps from 2017-01-31 back to 2016-01-18 on line 21.
    let err = load_err("stockindicators_mismatch.csv");
    assert_names_line(
        &err,
        "stockindicators_mismatch.csv",
        21,
        "time 2016-01-18T00:00:00Z is earlier than 2017-01-31T00:00:00Z on line 20",
    );
}

#[test]
fn real_bad_values_file() {
    // Stock.Indicators' bad.csv: from line 202 the date column is blank.
    let err = load_err("stockindicators_bad.csv");
    assert_names_line(&err, "stockindicators_bad.csv", 202, "time is empty");
    assert!(matches!(err, LoadError::Row { problem: RowProblem::EmptyField { column: "time" }, .. }));
}

#[test]
fn empty_file() {
    let err = load_err("empty.csv");
    assert_names_line(&err, "empty.csv", 1, "the file is empty");
}

#[test]
fn missing_file_names_the_path() {
    let err = load_err("no_such_file.csv");
    assert!(matches!(err, LoadError::Open { .. }));
    assert!(err.to_string().starts_with(&data("no_such_file.csv").display().to_string()), "{err}");
}
