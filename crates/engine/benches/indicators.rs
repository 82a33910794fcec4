//! Throughput of every indicator's streaming form over 74k synthetic bars (about the length of the
//! 2007–2018 EURUSD H1 history), reported per bar via criterion's element throughput.
//!
//! The bars are a seeded random walk so runs are comparable and no file I/O is timed or needed.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::Bar;
use engine::indicators::*;
use std::hint::black_box;

const BARS: usize = 74_000;

fn synthetic_bars() -> Vec<Bar> {
    // A small xorshift keeps the bench free of a rand dependency while still giving irregular prices.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut price = 1.10;
    (0..BARS)
        .map(|i| {
            let open = price;
            price *= 1.0 + (uniform() - 0.5) * 0.004;
            let close = price;
            let high = open.max(close) * (1.0 + uniform() * 0.001);
            let low = open.min(close) * (1.0 - uniform() * 0.001);
            Bar { time: i as i64 * 3600, open, high, low, close, volume: 1000.0 + uniform() * 5000.0 }
        })
        .collect()
}

fn bench_one<I: Indicator + Clone>(c: &mut Criterion, name: &str, ind: I, bars: &[Bar]) {
    let mut group = c.benchmark_group("indicators");
    group.throughput(Throughput::Elements(bars.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut ind = ind.clone();
            for bar in bars {
                black_box(ind.update(black_box(bar)));
            }
        })
    });
    group.finish();
}

fn indicators(c: &mut Criterion) {
    let bars = synthetic_bars();
    bench_one(c, "sma_20", Sma::new(20), &bars);
    bench_one(c, "ema_20", Ema::new(20), &bars);
    bench_one(c, "wma_14", Wma::new(14), &bars);
    bench_one(c, "rsi_14", Rsi::new(14), &bars);
    bench_one(c, "macd_12_26_9", Macd::default(), &bars);
    bench_one(c, "bollinger_20_2", BollingerBands::default(), &bars);
    bench_one(c, "stddev_20", StdDev::new(20), &bars);
    bench_one(c, "true_range", TrueRange::new(), &bars);
    bench_one(c, "atr_14", Atr::default(), &bars);
    bench_one(c, "adx_14", Adx::default(), &bars);
    bench_one(c, "stochastic_14_3_3", Stochastic::default(), &bars);
    bench_one(c, "obv", Obv::new(), &bars);
    bench_one(c, "vwap", Vwap::new(), &bars);
    bench_one(c, "vwap_daily", Vwap::daily(0), &bars);
    bench_one(c, "supertrend_10_3", SuperTrend::default(), &bars);
    bench_one(c, "psar", ParabolicSar::default(), &bars);
    // Period 200 shows the per-bar cost does not grow with the window.
    bench_one(c, "sma_200", Sma::new(200), &bars);
    bench_one(c, "stochastic_200_3_3", Stochastic::new(200, 3, 3), &bars);
}

criterion_group!(benches, indicators);
criterion_main!(benches);
