//! The indicator state a signal's Details shows (in Discord and on the dashboard): RSI, MACD, Bollinger %B,
//! ATR and ADX as they stood at the close of the last candle given. One function for both, so the two
//! never disagree about a number.

use crate::Bar;
use crate::indicators::{Adx, Atr, BollingerBands, Indicator, Macd, Rsi};
use chrono::{DateTime, Utc};
use domain::Candle;

/// Candles read for Details: enough for every indicator here to be warm (ADX(14) needs about 28, MACD 35;
/// RSI's and ADX's smoothing settle over a few hundred) and for a chart of the latest ones.
pub const HISTORY_CANDLES: u32 = 300;

/// The indicators Details shows, as they stood at the close of the signal's candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndicatorState {
    /// Open time of the candle they were computed at.
    pub at: DateTime<Utc>,
    pub rsi14: Option<f64>,
    pub macd_histogram: Option<f64>,
    pub bollinger_percent_b: Option<f64>,
    pub atr14: Option<f64>,
    pub adx14: Option<f64>,
}

/// Feeds every candle, oldest first, through RSI(14), MACD(12, 26, 9), Bollinger(20, 2), ATR(14) and
/// ADX(14); `None` without candles. A value still warming up is `None`.
pub fn indicator_state(candles: &[Candle]) -> Option<IndicatorState> {
    let last = candles.last()?;
    let (mut rsi, mut macd, mut bands) = (Rsi::new(14), Macd::new(12, 26, 9), BollingerBands::new(20, 2.0));
    let (mut atr, mut adx) = (Atr::new(14), Adx::new(14));
    let mut state = IndicatorState {
        at: last.time,
        rsi14: None,
        macd_histogram: None,
        bollinger_percent_b: None,
        atr14: None,
        adx14: None,
    };
    for candle in candles {
        let bar = Bar::from(candle);
        state.rsi14 = rsi.update(&bar);
        state.macd_histogram = macd.update(&bar).and_then(|m| m.histogram);
        state.bollinger_percent_b = bands.update(&bar).and_then(|b| b.percent_b);
        state.atr14 = atr.update(&bar);
        state.adx14 = adx.update(&bar).and_then(|a| a.adx);
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    fn candles(n: i64) -> Vec<Candle> {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        (0..n)
            .map(|i| {
                let open = Decimal::new(10_850 + (i % 7) * 3, 4);
                let close = open + Decimal::new(if i % 2 == 0 { 4 } else { -3 }, 4);
                Candle {
                    time: t0 + chrono::Duration::hours(i),
                    open,
                    high: open.max(close) + Decimal::new(2, 4),
                    low: open.min(close) - Decimal::new(2, 4),
                    close,
                    volume: Decimal::ONE,
                }
            })
            .collect()
    }

    #[test]
    fn no_candles_no_state() {
        assert_eq!(indicator_state(&[]), None);
    }

    #[test]
    fn a_short_history_is_still_warming_up_and_a_long_one_is_not() {
        let short = indicator_state(&candles(5)).unwrap();
        assert!(short.rsi14.is_none() && short.macd_histogram.is_none() && short.adx14.is_none());
        let history = candles(120);
        let long = indicator_state(&history).unwrap();
        assert_eq!(long.at, history[119].time);
        let rsi = long.rsi14.unwrap();
        assert!((0.0..=100.0).contains(&rsi), "{rsi}");
        assert!(long.macd_histogram.is_some() && long.bollinger_percent_b.is_some());
        assert!(long.atr14.unwrap() > 0.0 && long.adx14.is_some());
    }
}
