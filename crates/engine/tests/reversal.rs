//! Stage 1, the labels, stage 2 and the scanner, on bars built by hand so every expected value can be
//! worked out on paper.

use domain::Side;
use engine::Bar;
use engine::reversal::{
    DetectorParams, ReversalDetector, ReversalModel, ReversalScanner, Triggers, collect_samples, label, train,
    walk_forward,
};
use engine::reversal::{FEATURE_COUNT, TrainingOptions};
use std::sync::Arc;

fn bar(i: i64, open: f64, high: f64, low: f64, close: f64) -> Bar {
    Bar { time: i * 3600, open, high, low, close, volume: 1000.0 }
}

/// 60 bars of a steady decline (each bar −0.0010 with a small range), so RSI sinks below 30.
fn decline() -> Vec<Bar> {
    (0..60)
        .map(|i| {
            let open = 1.2000 - 0.0010 * i as f64;
            let close = open - 0.0010;
            bar(i, open, open + 0.0002, close - 0.0002, close)
        })
        .collect()
}

#[test]
fn too_little_history_gives_no_candidate_and_no_panic() {
    let mut d = ReversalDetector::new(DetectorParams::default());
    for b in decline().iter().take(30) {
        assert!(d.update(b).is_none());
    }
    // Degenerate input: flat prices and zero ranges must not panic either.
    let mut d = ReversalDetector::new(DetectorParams::default());
    for i in 0..200 {
        assert!(d.update(&bar(i, 1.0, 1.0, 1.0, 1.0)).is_none());
    }
}

#[test]
fn a_bullish_engulfing_after_an_exhausted_decline_is_a_long_candidate_with_its_levels() {
    let mut bars = decline();
    let last = bars.last().unwrap().close;
    // Engulfing: opens below the last close, closes above the last bar's open.
    let prev_open = bars.last().unwrap().open;
    bars.push(bar(60, last - 0.0003, prev_open + 0.0008, last - 0.0006, prev_open + 0.0005));
    let mut d = ReversalDetector::new(DetectorParams::default());
    let mut found = None;
    for b in &bars {
        found = d.update(b).or(found);
    }
    let c = found.expect("a candidate on the engulfing bar");
    assert_eq!(c.side, Side::Long);
    assert_eq!(c.time, 60 * 3600);
    assert!(c.triggers.has(Triggers::ENGULFING) && c.triggers.has(Triggers::RSI_EXTREME), "{:?}", c.triggers.names());
    assert_eq!(c.entry, prev_open + 0.0005);
    let risk = c.entry - c.stop_loss;
    let atr = c.state.atr;
    assert!(risk >= atr - 1e-12 && risk <= 3.0 * atr + 1e-12, "risk {risk} within 1..3 ATR ({atr})");
    assert!((c.take_profit - (c.entry + 2.0 * risk)).abs() < 1e-12, "take profit at 1:2");
}

#[test]
fn shorts_mirror_longs() {
    // The same series upside down must give a short candidate with mirrored levels.
    let mut bars = decline();
    let last = bars.last().unwrap().close;
    let prev_open = bars.last().unwrap().open;
    bars.push(bar(60, last - 0.0003, prev_open + 0.0008, last - 0.0006, prev_open + 0.0005));
    let flip = |b: &Bar| Bar {
        time: b.time,
        open: 3.0 - b.open,
        high: 3.0 - b.low,
        low: 3.0 - b.high,
        close: 3.0 - b.close,
        volume: b.volume,
    };
    let (mut up, mut down) =
        (ReversalDetector::new(DetectorParams::default()), ReversalDetector::new(DetectorParams::default()));
    let (mut long, mut short) = (None, None);
    for b in &bars {
        long = up.update(b).or(long);
        short = down.update(&flip(b)).or(short);
    }
    let (l, s) = (long.unwrap(), short.unwrap());
    assert_eq!(s.side, Side::Short);
    assert_eq!(s.triggers, l.triggers);
    assert!((s.stop_loss - (3.0 - l.stop_loss)).abs() < 1e-9);
    assert!((s.take_profit - (3.0 - l.take_profit)).abs() < 1e-9);
}

fn long_candidate() -> engine::reversal::Candidate {
    let mut bars = decline();
    let last = bars.last().unwrap().close;
    let prev_open = bars.last().unwrap().open;
    bars.push(bar(60, last - 0.0003, prev_open + 0.0008, last - 0.0006, prev_open + 0.0005));
    let mut d = ReversalDetector::new(DetectorParams::default());
    bars.iter().filter_map(|b| d.update(b)).last().unwrap()
}

#[test]
fn labels_follow_the_stop_loss_first_rule() {
    let mut c = long_candidate();
    c.entry = 1.0;
    c.stop_loss = 0.99;
    c.take_profit = 1.02;
    let signal = bar(0, 1.0, 1.0, 1.0, 1.0);
    // One bar touching both levels: the stop loss counts.
    let both = [signal, bar(1, 1.0, 1.03, 0.98, 1.01)];
    let o = label(&c, &both, 0, 10).unwrap();
    assert!(!o.win && (o.r + 1.0).abs() < 1e-12 && o.bars == 1);
    // A clean win two bars later pays 2R.
    let win = [signal, bar(1, 1.0, 1.005, 0.995, 1.0), bar(2, 1.0, 1.025, 0.995, 1.02)];
    let o = label(&c, &win, 0, 10).unwrap();
    assert!(o.win && (o.r - 2.0).abs() < 1e-9 && o.bars == 2);
    // A gap through the stop fills at the open.
    let gap = [signal, bar(1, 0.98, 0.985, 0.97, 0.975)];
    assert!((label(&c, &gap, 0, 10).unwrap().r + 2.0).abs() < 1e-9);
    // Neither level within the horizon: marked to market at the horizon's close; unknown before it ends.
    let flat = [signal, bar(1, 1.0, 1.005, 0.995, 1.005), bar(2, 1.0, 1.005, 0.995, 1.005)];
    let o = label(&c, &flat, 0, 2).unwrap();
    assert!(!o.win && (o.r - 0.5).abs() < 1e-9);
    assert!(label(&c, &flat, 0, 3).is_none());
}

/// A market where the label is decided by the first feature, to check that stage 2 learns the right way
/// round and that a corrupt or foreign model file is refused.
#[test]
fn stage_two_learns_the_sign_of_an_informative_feature() {
    let mut samples = Vec::new();
    for i in 0..400 {
        let x = (i % 20) as f64 / 10.0 - 1.0;
        let mut features = [0.0; FEATURE_COUNT];
        features[0] = x;
        features[1] = ((i * 7) % 13) as f64;
        samples.push(engine::reversal::Sample {
            time: i,
            exit_time: i + 1,
            side: Side::Long,
            triggers: Triggers(Triggers::RSI_EXTREME | Triggers::ENGULFING),
            features,
            // Wins mostly when the first feature is high; a minority (about a third) overall.
            win: x > 0.3 || i % 17 == 0,
            r: if x > 0.3 { 2.0 } else { -1.0 },
        });
    }
    let model = train(&samples, DetectorParams::default(), TrainingOptions::default(), "t".into(), vec![]).unwrap();
    let mut high = [0.0; FEATURE_COUNT];
    high[0] = 0.9;
    let mut low = [0.0; FEATURE_COUNT];
    low[0] = -0.9;
    assert!(model.predict(&high) > 0.7, "{}", model.predict(&high));
    assert!(model.predict(&low) < 0.2, "{}", model.predict(&low));

    let text = model.to_json();
    assert_eq!(ReversalModel::from_json(&text, "m.json").unwrap(), model);
    let err = ReversalModel::from_json("{\"format\": 1, \"version\": 3", "broken.json").unwrap_err();
    assert!(err.to_string().contains("broken.json"), "{err}");
    let err = ReversalModel::from_json(&text.replace("\"format\": 1", "\"format\": 9"), "future.json").unwrap_err();
    assert!(err.to_string().contains("future.json") && err.to_string().contains("format 9"), "{err}");
    let err = ReversalModel::from_json(&text.replace("rsi_stretch", "something_else"), "other.json").unwrap_err();
    assert!(err.to_string().contains("features"), "{err}");

    // Walk-forward on the same data finds the signal out of sample, and never trains on its test fold.
    let report = walk_forward(&samples, 4, 0.4, DetectorParams::default(), TrainingOptions::default()).unwrap();
    assert!(report.auc > 0.8, "{}", report.auc);
    assert_eq!(report.out_of_sample, 240);
    assert_eq!(report.calibration.iter().map(|b| b.count).sum::<usize>(), 240);
}

#[test]
fn the_scanner_scores_candidates_with_both_stages_and_the_model_version() {
    let bars: Vec<Bar> = decline();
    let samples = collect_samples(&bars, DetectorParams::default(), 5, 3600);
    assert!(samples.iter().all(|s| s.features.iter().all(|f| f.is_finite())));
    let model = ReversalModel::from_json(include_str!("../../../models/reversal-lr-v1.json"), "shipped").unwrap();
    let mut scanner = ReversalScanner::new(Arc::new(model.clone()), 3600);
    let mut last = decline();
    let close = last.last().unwrap().close;
    let prev_open = last.last().unwrap().open;
    last.push(bar(60, close - 0.0003, prev_open + 0.0008, close - 0.0006, prev_open + 0.0005));
    let signal = last.iter().filter_map(|b| scanner.on_bar(b)).last().unwrap();
    assert_eq!(signal.close_time, 61 * 3600, "the close of the signal bar");
    assert_eq!(signal.model_version, model.version);
    assert!((0.0..=1.0).contains(&signal.stage2_prob) && (0.0..=1.0).contains(&signal.stage1_prob));
    assert_eq!(signal.confidence, signal.stage2_prob);
}
