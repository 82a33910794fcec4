//! Property tests: on random bar sequences, `batch` equals bar-by-bar `update`, `reset` then replay
//! reproduces the same outputs, and the O(1) windowed forms agree with naive rescans of the window.
//!
//! The generator deliberately produces flat stretches and zero volume so equality and zero-division paths
//! are exercised, and gaps in time so daily VWAP sessions roll over.

use engine::Bar;
use engine::indicators::*;
use proptest::prelude::*;
use std::fmt::Debug;

fn bars_strategy(max_len: usize) -> impl Strategy<Value = Vec<Bar>> {
    // (step, spread, close position in range, volume, hours to next bar); step 0 with spread 0 is flat.
    let step = prop_oneof![3 => -5.0..5.0f64, 1 => Just(0.0)];
    let spread = prop_oneof![3 => 0.0..3.0f64, 1 => Just(0.0)];
    let volume = prop_oneof![3 => 0.0..1e6f64, 1 => Just(0.0)];
    prop::collection::vec((step, spread, 0.0..=1.0f64, 0.0..=1.0f64, volume, 1..30i64), 0..max_len).prop_map(|raw| {
        let mut price = 100.0;
        let mut time = 1_500_000_000;
        raw.into_iter()
            .map(|(step, spread, o_pos, c_pos, volume, hours)| {
                price = (price + step).max(1.0);
                time += hours * 3600;
                let low = price;
                let high = price + spread;
                Bar { time, open: low + o_pos * spread, high, low, close: low + c_pos * spread, volume }
            })
            .collect()
    })
}

/// `batch` on a fresh copy equals `update` bar by bar, and a dirty instance after `reset` replays the same.
fn check_replay<I>(fresh: &I, bars: &[Bar]) -> Result<(), TestCaseError>
where
    I: Indicator + Clone,
    I::Output: PartialEq + Debug,
{
    let batch = fresh.clone().batch(bars);
    let mut streaming = fresh.clone();
    let streamed: Vec<_> = bars.iter().map(|b| streaming.update(b)).collect();
    prop_assert_eq!(&batch, &streamed);
    streaming.reset();
    let replayed: Vec<_> = bars.iter().map(|b| streaming.update(b)).collect();
    prop_assert_eq!(&batch, &replayed);
    // Reset from the middle of a warm-up as well as from the end.
    let mut half = fresh.clone();
    for b in &bars[..bars.len() / 3] {
        half.update(b);
    }
    half.reset();
    prop_assert_eq!(&batch, &half.batch(bars));
    Ok(())
}

fn close_enough(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn batch_update_and_reset_agree(bars in bars_strategy(300), p in 1usize..30) {
        check_replay(&Sma::new(p), &bars)?;
        check_replay(&Ema::new(p), &bars)?;
        check_replay(&Wma::new(p), &bars)?;
        check_replay(&Rsi::new(p), &bars)?;
        check_replay(&Macd::new(p, p + 5, p.div_ceil(2)), &bars)?;
        check_replay(&BollingerBands::new(p, 2.0), &bars)?;
        check_replay(&StdDev::new(p), &bars)?;
        check_replay(&TrueRange::new(), &bars)?;
        check_replay(&Atr::new(p), &bars)?;
        check_replay(&Adx::new(p), &bars)?;
        check_replay(&Stochastic::new(p, 3, 3), &bars)?;
        check_replay(&Obv::new(), &bars)?;
        check_replay(&Vwap::new(), &bars)?;
        check_replay(&Vwap::daily(-5 * 3600), &bars)?;
        check_replay(&SuperTrend::new(p, 3.0), &bars)?;
        check_replay(&ParabolicSar::new(0.02, 0.2), &bars)?;
    }

    #[test]
    fn windowed_forms_match_naive_rescans(bars in bars_strategy(400), p in 1usize..25) {
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let sma = Sma::new(p).batch(&bars);
        let wma = Wma::new(p).batch(&bars);
        let sd = StdDev::new(p).batch(&bars);
        let stoch = Stochastic::new(p, 1, 1).batch(&bars);
        for i in 0..bars.len() {
            if i + 1 < p {
                prop_assert!(sma[i].is_none() && wma[i].is_none() && sd[i].is_none() && stoch[i].is_none());
                continue;
            }
            let w = &closes[i + 1 - p..=i];
            let mean = w.iter().sum::<f64>() / p as f64;
            prop_assert!(close_enough(sma[i].unwrap(), mean), "sma[{}]", i);

            let weighted = w.iter().zip(1..).map(|(x, k)| x * f64::from(k)).sum::<f64>();
            let wma_naive = weighted / (p * (p + 1) / 2) as f64;
            prop_assert!(close_enough(wma[i].unwrap(), wma_naive), "wma[{}]", i);

            let var = w.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / p as f64;
            let got = sd[i].unwrap();
            prop_assert!(close_enough(got.mean, mean), "sd.mean[{}]", i);
            // Variance errors scale with the prices, not the (possibly tiny) deviation.
            prop_assert!((got.std_dev.powi(2) - var).abs() <= 1e-9 * mean * mean, "sd[{}]", i);

            let bw = &bars[i + 1 - p..=i];
            let hh = bw.iter().map(|b| b.high).fold(f64::MIN, f64::max);
            let ll = bw.iter().map(|b| b.low).fold(f64::MAX, f64::min);
            let c = bars[i].close;
            let raw = if hh == ll || c <= ll { 0.0 } else if c >= hh { 100.0 } else { 100.0 * (c - ll) / (hh - ll) };
            prop_assert!(close_enough(stoch[i].unwrap().k, raw), "stoch[{}]", i);
        }
    }

    #[test]
    fn outputs_are_finite(bars in bars_strategy(200), p in 1usize..20) {
        let finite = |x: f64| x.is_finite();
        let opt = |x: Option<f64>| x.is_none_or(f64::is_finite);
        for o in BollingerBands::new(p, 2.0).batch(&bars).into_iter().flatten() {
            prop_assert!(finite(o.upper) && finite(o.lower) && opt(o.percent_b) && opt(o.width) && opt(o.z_score));
        }
        for o in Adx::new(p).batch(&bars).into_iter().flatten() {
            prop_assert!(finite(o.plus_di) && finite(o.minus_di) && finite(o.dx) && opt(o.adx) && opt(o.adxr));
        }
        for o in Stochastic::new(p, 3, 3).batch(&bars).into_iter().flatten() {
            prop_assert!((0.0..=100.0).contains(&o.k) && opt(o.d) && opt(o.j));
        }
        for o in Rsi::new(p).batch(&bars).into_iter().flatten() {
            prop_assert!((0.0..=100.0).contains(&o));
        }
        for o in Vwap::daily(0).batch(&bars).into_iter().flatten() {
            prop_assert!(finite(o));
        }
        for o in SuperTrend::new(p, 3.0).batch(&bars).into_iter().flatten() {
            prop_assert!(finite(o.value));
        }
        for o in ParabolicSar::default().batch(&bars).into_iter().flatten() {
            prop_assert!(finite(o.sar));
        }
    }
}
