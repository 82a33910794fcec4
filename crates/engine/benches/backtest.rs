//! Backtester throughput: `sma-cross` (SMA 10/30, stop-and-reverse) and `reversal` (the shipped model,
//! every signal taken) over the 74,439-bar Lean EURUSD H1
//! file, mid prices with the file's spreads, as `signalpost backtest --strategy sma-cross` runs it.
//! Criterion reports candles per second (one element = one bar).
//!
//! `cargo bench -p engine --bench backtest`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use domain::InstrumentRegistry;
use engine::Bar;
use engine::backtest::{self, BacktestConfig};
use engine::strategies::SmaCross;
use rust_decimal::prelude::ToPrimitive;
use std::hint::black_box;
use std::path::Path;

fn load() -> (Vec<Bar>, Vec<f64>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../market/data/lean_oanda_EURUSD_H1_2007-2018.csv.gz");
    let file = market::load_candle_file(&path, &market::LoadOptions::default()).expect("the bundled EURUSD file loads");
    let bars = file.candles.iter().map(Bar::from).collect();
    let spreads = file.spreads.expect("a bid/ask file has spreads").iter().map(|s| s.to_f64().unwrap_or(0.0)).collect();
    (bars, spreads)
}

fn sma_cross(c: &mut Criterion) {
    let (bars, spreads) = load();
    let eurusd = InstrumentRegistry::global().get("EURUSD").unwrap();
    let config = BacktestConfig::default();
    let mut group = c.benchmark_group("backtest");
    group.throughput(Throughput::Elements(bars.len() as u64));
    group.bench_function("sma_cross_eurusd_h1_74k", |b| {
        b.iter(|| {
            let result = backtest::run(&mut SmaCross::default(), eurusd, &bars, Some(&spreads), &config).unwrap();
            black_box(result.metrics.trades)
        })
    });
    group.bench_function("sma_cross_eurusd_h1_74k_no_spreads", |b| {
        b.iter(|| {
            let result = backtest::run(&mut SmaCross::default(), eurusd, &bars, None, &config).unwrap();
            black_box(result.metrics.trades)
        })
    });
    let model = std::sync::Arc::new(
        engine::reversal::ReversalModel::from_json(include_str!("../../../models/reversal-lr-v1.json"), "shipped")
            .unwrap(),
    );
    group.bench_function("reversal_eurusd_h1_74k", |b| {
        b.iter(|| {
            let scanner = engine::reversal::ReversalScanner::new(model.clone(), 3600);
            let mut strategy = engine::reversal::ReversalStrategy::new(scanner, 0.0);
            let result = backtest::run(&mut strategy, eurusd, &bars, Some(&spreads), &config).unwrap();
            black_box(result.metrics.trades)
        })
    });
    group.finish();
}

criterion_group!(benches, sma_cross);
criterion_main!(benches);
