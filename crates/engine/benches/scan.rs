//! The scanner at one candle close, and stage-2 inference per candidate.
//!
//! Run: `cargo bench -p engine --bench scan`.
//! - `scan/50_instruments_x_4_timeframes`: 200 scanners (each warmed with 500 bars of its own random walk)
//!   each see one more closed bar, as `serve` does when a candle closes everywhere at once.
//! - `model/predict`: one stage-2 probability from a candidate's features.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use engine::Bar;
use engine::reversal::{FEATURE_COUNT, ReversalModel, ReversalScanner};
use std::hint::black_box;
use std::sync::Arc;

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn walk(seed: u64, n: usize) -> Vec<Bar> {
    let mut rng = Rng(seed | 1);
    let mut price = 100.0;
    (0..n)
        .map(|i| {
            let open = price;
            let close = open * (1.0 + (rng.unit() - 0.5) * 0.01);
            let high = open.max(close) * (1.0 + rng.unit() * 0.003);
            let low = open.min(close) * (1.0 - rng.unit() * 0.003);
            price = close;
            Bar { time: i as i64 * 3600, open, high, low, close, volume: 1000.0 }
        })
        .collect()
}

fn model() -> Arc<ReversalModel> {
    Arc::new(ReversalModel::from_json(include_str!("../../../models/reversal-lr-v1.json"), "shipped").unwrap())
}

fn bench(c: &mut Criterion) {
    let model = model();
    let series: Vec<Vec<Bar>> = (0..200).map(|s| walk(0x5EED + s, 501)).collect();
    let warmed: Vec<ReversalScanner> = series
        .iter()
        .map(|bars| {
            let mut scanner = ReversalScanner::new(model.clone(), 3600);
            for b in &bars[..500] {
                scanner.on_bar(b);
            }
            scanner
        })
        .collect();
    c.bench_function("scan/50_instruments_x_4_timeframes", |b| {
        b.iter_batched(
            || warmed.clone(),
            |mut scanners| {
                let mut signals = 0;
                for (scanner, bars) in scanners.iter_mut().zip(&series) {
                    signals += usize::from(scanner.on_bar(&bars[500]).is_some());
                }
                signals
            },
            BatchSize::LargeInput,
        )
    });
    let features: Vec<[f64; FEATURE_COUNT]> =
        (0..64).map(|i| std::array::from_fn(|f| ((i * 31 + f * 7) % 17) as f64 / 8.0 - 1.0)).collect();
    let mut i = 0;
    c.bench_function("model/predict", |b| {
        b.iter(|| {
            i = (i + 1) % features.len();
            model.predict(black_box(&features[i]))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
