//! Throughput of `parser::parse` over the dev and held-out corpus lines, in messages per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn texts() -> Vec<String> {
    let mut out = Vec::new();
    for file in ["signals_dev.jsonl", "heldout.jsonl", "heldout2.jsonl"] {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let data = std::fs::read_to_string(&path).expect("test data");
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            out.push(v["text"].as_str().expect("text").to_string());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let texts = texts();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(parser::parse(black_box(t)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
