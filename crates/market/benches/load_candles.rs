//! How long the bundled 74,439-bar EURUSD H1 file (gzipped, bid/ask layout) takes to load, from disk and
//! from memory, and how long resampling it to 4h takes. The target is 100 ms for the load in release mode.
//!
//! Run with `cargo bench -p market --bench load_candles`.

use criterion::{Criterion, criterion_group, criterion_main};
use domain::Timeframe;
use market::{LoadOptions, load_candles, parse_candles, resample};
use std::hint::black_box;
use std::path::PathBuf;

fn lean_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/lean_oanda_EURUSD_H1_2007-2018.csv.gz")
}

fn benches(c: &mut Criterion) {
    let path = lean_file();
    let options = LoadOptions::default();
    let bytes = std::fs::read(&path).expect("the bundled Lean file is in data/");
    let candles = load_candles(&path, &options).expect("the bundled Lean file loads");
    assert_eq!(candles.len(), 74_439);

    let mut group = c.benchmark_group("eurusd_h1_74k");
    group.sample_size(30);
    group.bench_function("load_candles_gz_file", |b| b.iter(|| load_candles(black_box(&path), &options).unwrap()));
    group.bench_function("parse_candles_gz_in_memory", |b| {
        b.iter(|| parse_candles(black_box(&bytes[..]), "lean.csv.gz", &options).unwrap())
    });
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
    group.bench_function("gunzip_only", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(text.len());
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(black_box(&bytes[..])), &mut out).unwrap();
            out
        })
    });
    group.bench_function("parse_candles_uncompressed_mid", |b| {
        b.iter(|| parse_candles(black_box(&text[..]), "lean.csv", &options).unwrap())
    });
    let bid = LoadOptions::with_price(market::PriceSide::Bid);
    group.bench_function("parse_candles_uncompressed_bid", |b| {
        b.iter(|| parse_candles(black_box(&text[..]), "lean.csv", &bid).unwrap())
    });
    group.bench_function("resample_to_4h", |b| b.iter(|| resample(black_box(&candles), Timeframe::H4)));
    group.finish();
}

criterion_group!(load, benches);
criterion_main!(load);
