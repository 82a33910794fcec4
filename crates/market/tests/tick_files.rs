//! Loading tick files from tests/data: a real TrueFX excerpt and hand-written bad inputs.

use chrono::{TimeZone, Utc};
use domain::Symbol;
use market::load_ticks;
use rust_decimal_macros::dec;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

#[test]
fn truefx_bid_ask_ticks_with_fractional_times_and_offsets() {
    let usdjpy = Symbol::normalize("USDJPY");
    let ticks = load_ticks(&data("truefx_USDJPY_ticks_head200.csv"), &usdjpy).unwrap();
    assert_eq!(ticks.len(), 200);
    // 2013-01-01 22:00:00.295000+00:00,86.655,86.728
    let first = &ticks[0];
    assert_eq!(first.symbol, usdjpy);
    assert_eq!(first.time, Utc.with_ymd_and_hms(2013, 1, 1, 22, 0, 0).unwrap() + chrono::Duration::milliseconds(295));
    assert_eq!((first.bid.value(), first.ask.value()), (dec!(86.655), dec!(86.728)));
    assert!(first.synthetic_from.is_none());
    assert!(ticks.windows(2).all(|w| w[0].time <= w[1].time));
}

#[test]
fn ticks_going_back_in_time_are_an_error_naming_the_line() {
    let path = data("ticks_out_of_order.csv");
    let err = load_ticks(&path, &Symbol::normalize("EURUSD")).unwrap_err();
    let want = format!(
        "{} line 3: time 2024-01-02T00:00:00.050Z is earlier than 2024-01-02T00:00:00.100Z on line 2",
        path.display()
    );
    assert!(err.to_string().starts_with(&want), "{err}");
}

#[test]
fn a_negative_price_is_an_error_naming_the_line() {
    let path = data("ticks_bad_price.csv");
    let err = load_ticks(&path, &Symbol::normalize("EURUSD")).unwrap_err();
    let want = format!("{} line 3: price: a price must be greater than zero", path.display());
    assert!(err.to_string().starts_with(&want), "{err}");
}
