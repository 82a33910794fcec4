//! `Bar`: a candle as the engine computes with it.

use domain::Candle;
use rust_decimal::prelude::ToPrimitive;

/// One closed candle in `f64`. `time` is the open time in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bar {
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl From<&Candle> for Bar {
    fn from(c: &Candle) -> Bar {
        let f = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(f64::NAN);
        Bar {
            time: c.time.timestamp(),
            open: f(c.open),
            high: f(c.high),
            low: f(c.low),
            close: f(c.close),
            volume: f(c.volume),
        }
    }
}
