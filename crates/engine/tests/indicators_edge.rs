//! Edge cases: empty input, too little history, flat markets (zero standard deviation, zero range) and
//! zero volume. Each must give `None` or a defined finite value, never a panic or a NaN.

use engine::Bar;
use engine::indicators::*;

fn bar(time: i64, o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
    Bar { time, open: o, high: h, low: l, close: c, volume: v }
}

fn flat(n: usize, price: f64, volume: f64) -> Vec<Bar> {
    (0..n as i64).map(|i| bar(i * 86_400, price, price, price, price, volume)).collect()
}

fn rising(n: usize) -> Vec<Bar> {
    (0..n)
        .map(|i| (i as i64, 100.0 + i as f64))
        .map(|(t, p)| bar(t * 60, p, p + 1.0, p - 1.0, p + 0.5, 1000.0))
        .collect()
}

fn last<T: Copy>(out: Vec<Option<T>>) -> T {
    out.last().copied().flatten().unwrap()
}

/// Index of the first `Some`, if any.
fn first_some<T>(out: &[Option<T>]) -> Option<usize> {
    out.iter().position(Option::is_some)
}

#[test]
fn empty_input_gives_empty_output() {
    assert!(Sma::new(5).batch(&[]).is_empty());
    assert!(Ema::new(5).batch(&[]).is_empty());
    assert!(Wma::new(5).batch(&[]).is_empty());
    assert!(Rsi::default().batch(&[]).is_empty());
    assert!(Macd::default().batch(&[]).is_empty());
    assert!(BollingerBands::default().batch(&[]).is_empty());
    assert!(StdDev::new(5).batch(&[]).is_empty());
    assert!(TrueRange::new().batch(&[]).is_empty());
    assert!(Atr::default().batch(&[]).is_empty());
    assert!(Adx::default().batch(&[]).is_empty());
    assert!(Stochastic::default().batch(&[]).is_empty());
    assert!(Obv::new().batch(&[]).is_empty());
    assert!(Vwap::new().batch(&[]).is_empty());
    assert!(SuperTrend::default().batch(&[]).is_empty());
    assert!(ParabolicSar::default().batch(&[]).is_empty());
}

/// The warm-up of every indicator, stated once: the bar index of its first value.
#[test]
fn warm_up_lengths() {
    let bars = rising(100);
    assert_eq!(first_some(&Sma::new(20).batch(&bars)), Some(19));
    assert_eq!(first_some(&Ema::new(20).batch(&bars)), Some(19));
    assert_eq!(first_some(&Wma::new(14).batch(&bars)), Some(13));
    assert_eq!(first_some(&Rsi::new(14).batch(&bars)), Some(14));
    let macd = Macd::new(12, 26, 9).batch(&bars);
    assert_eq!(first_some(&macd), Some(25));
    assert_eq!(macd.iter().position(|o| o.is_some_and(|o| o.signal.is_some())), Some(33));
    assert_eq!(first_some(&BollingerBands::new(20, 2.0).batch(&bars)), Some(19));
    assert_eq!(first_some(&StdDev::new(14).batch(&bars)), Some(13));
    assert_eq!(first_some(&TrueRange::new().batch(&bars)), Some(1));
    assert_eq!(first_some(&Atr::new(14).batch(&bars)), Some(14));
    let adx = Adx::new(14).batch(&bars);
    assert_eq!(first_some(&adx), Some(14));
    assert_eq!(adx.iter().position(|o| o.is_some_and(|o| o.adx.is_some())), Some(27));
    assert_eq!(adx.iter().position(|o| o.is_some_and(|o| o.adxr.is_some())), Some(41));
    let stoch = Stochastic::new(14, 3, 3).batch(&bars);
    assert_eq!(first_some(&stoch), Some(15));
    assert_eq!(stoch.iter().position(|o| o.is_some_and(|o| o.d.is_some())), Some(17));
    assert_eq!(first_some(&Obv::new().batch(&bars)), Some(0));
    assert_eq!(first_some(&Vwap::new().batch(&bars)), Some(0));
    assert_eq!(first_some(&SuperTrend::new(10, 3.0).batch(&bars)), Some(10));
}

#[test]
fn fewer_bars_than_the_period_give_none() {
    let bars = rising(10);
    for n in 0..=bars.len() {
        let b = &bars[..n];
        assert!(Sma::new(11).batch(b).iter().all(Option::is_none));
        assert!(Ema::new(11).batch(b).iter().all(Option::is_none));
        assert!(Wma::new(11).batch(b).iter().all(Option::is_none));
        assert!(Rsi::new(10).batch(b).iter().all(Option::is_none));
        assert!(Macd::new(5, 11, 3).batch(b).iter().all(Option::is_none));
        assert!(BollingerBands::new(11, 2.0).batch(b).iter().all(Option::is_none));
        assert!(StdDev::new(11).batch(b).iter().all(Option::is_none));
        assert!(Atr::new(10).batch(b).iter().all(Option::is_none));
        assert!(Adx::new(10).batch(b).iter().all(Option::is_none));
        assert!(Stochastic::new(11, 1, 1).batch(b).iter().all(Option::is_none));
        assert!(SuperTrend::new(10, 3.0).batch(b).iter().all(Option::is_none));
    }
    assert_eq!(TrueRange::new().batch(&bars[..1]), vec![None]);
}

#[test]
fn period_one_tracks_the_close() {
    let bars = rising(5);
    let closes: Vec<_> = bars.iter().map(|b| Some(b.close)).collect();
    assert_eq!(Sma::new(1).batch(&bars), closes);
    assert_eq!(Ema::new(1).batch(&bars), closes);
    assert_eq!(Wma::new(1).batch(&bars), closes);
}

#[test]
#[should_panic(expected = "period must be positive")]
fn zero_period_is_a_programming_error() {
    let _ = Sma::new(0);
}

#[test]
fn flat_market_gives_defined_values() {
    let bars = flat(60, 0.1, 1000.0);

    // 0.1 is not exact in binary, so a flat window must be recognised as flat, not as rounding noise.
    let bb: BollingerOutput = last(BollingerBands::new(20, 2.0).batch(&bars));
    assert_eq!((bb.upper, bb.middle, bb.lower), (0.1, 0.1, 0.1));
    assert_eq!((bb.percent_b, bb.z_score, bb.width), (None, None, Some(0.0)));
    let sd: StdDevOutput = last(StdDev::new(14).batch(&bars));
    assert_eq!((sd.mean, sd.std_dev, sd.z_score), (0.1, 0.0, None));

    let st: StochOutput = last(Stochastic::default().batch(&bars));
    assert_eq!((st.k, st.d, st.j), (0.0, Some(0.0), Some(0.0)));
    assert_eq!(last(Rsi::default().batch(&bars)), 50.0);
    assert_eq!(last(Atr::default().batch(&bars)), 0.0);
    let adx: AdxOutput = last(Adx::default().batch(&bars));
    assert_eq!((adx.plus_di, adx.minus_di, adx.dx, adx.adx, adx.adxr), (0.0, 0.0, 0.0, Some(0.0), Some(0.0)));
    let macd: MacdOutput = last(Macd::default().batch(&bars));
    assert!(macd.macd.abs() < 1e-15 && macd.histogram.is_some_and(|h| h.abs() < 1e-15));
    let s: SuperTrendOutput = last(SuperTrend::default().batch(&bars));
    assert_eq!(s.value, 0.1);
    assert_eq!(last(Obv::new().batch(&bars)), 0.0);
    assert!((last(Vwap::new().batch(&bars)) - 0.1).abs() < 1e-15);
    // With no range the initial guessed trend never reverses, so no SAR is ever trusted.
    assert!(ParabolicSar::default().batch(&bars).iter().all(Option::is_none));
}

#[test]
fn vwap_without_volume_is_none_until_volume_trades() {
    let mut bars = flat(5, 10.0, 0.0);
    assert!(Vwap::new().batch(&bars).iter().all(Option::is_none));
    bars.push(bar(5 * 86_400, 12.0, 13.0, 11.0, 12.0, 100.0));
    bars.push(bar(6 * 86_400, 20.0, 20.0, 20.0, 20.0, 0.0));
    let out = Vwap::new().batch(&bars);
    assert_eq!(&out[5..], &[Some(12.0), Some(12.0)]);
}

#[test]
fn vwap_restarts_each_session() {
    let h = 3600;
    let day = 86_400;
    let bars = [
        bar(9 * h, 0.0, 10.0, 10.0, 10.0, 1.0),
        bar(10 * h, 0.0, 20.0, 20.0, 20.0, 1.0),
        bar(day + 9 * h, 0.0, 40.0, 40.0, 40.0, 3.0),
        bar(day + 10 * h, 0.0, 60.0, 60.0, 60.0, 1.0),
    ];
    assert_eq!(Vwap::new().batch(&bars), vec![Some(10.0), Some(15.0), Some(30.0), Some(35.0)]);
    assert_eq!(Vwap::daily(0).batch(&bars), vec![Some(10.0), Some(15.0), Some(40.0), Some(45.0)]);
    // A UTC−10 day starts at 10:00 UTC: the 10:00 bars open new sessions and the 09:00 bar of day two still
    // belongs to the session opened the day before.
    assert_eq!(Vwap::daily(-10 * h).batch(&bars), vec![Some(10.0), Some(20.0), Some(35.0), Some(60.0)]);

    let mut manual = Vwap::new();
    assert_eq!(manual.update(&bars[0]), Some(10.0));
    manual.start_session();
    assert_eq!(manual.update(&bars[1]), Some(20.0));
}

#[test]
fn supertrend_and_psar_follow_a_trend() {
    let up = rising(60);
    let st = SuperTrend::default().batch(&up);
    assert!(st.iter().flatten().all(|o| o.direction == Direction::Up && o.value < 200.0));
    let down: Vec<Bar> = up.iter().rev().enumerate().map(|(i, b)| Bar { time: i as i64 * 60, ..*b }).collect();
    let st = SuperTrend::default().batch(&down);
    assert_eq!(st.last().copied().flatten().map(|o| o.direction), Some(Direction::Down));
    // The initial guess is "rising", so a falling market reverses early and then stays down.
    let sar = ParabolicSar::default().batch(&down);
    let first = first_some(&sar).unwrap();
    assert!(first <= 3, "{first}");
    assert!(sar[first..].iter().flatten().all(|o| o.direction == Direction::Down && !o.is_reversal));
}
