//! The position monitor's hot path: 100,000 open trades on 20 instruments, 1,000,000 ticks.
//!
//! Run: `cargo bench -p domain --bench trigger_book`. Prints the index's resident memory per open trade
//! (RSS growth while building the book, so allocator overhead counts) before the timing runs.

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use domain::{FixedPrice, InstrumentRegistry, Price, Side, TradeId, Trigger, TriggerBook, WatchedTrade};
use rust_decimal::Decimal;

const TRADES: usize = 100_000;
const TICKS: usize = 1_000_000;
const INSTRUMENTS: usize = 20;

/// A small deterministic generator, so every run sees the same market.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

/// Starting mid of each instrument, in units of 1e-5.
fn start_price(i: usize) -> i64 {
    100_000 + 7_000 * i as i64
}

fn trades() -> Vec<WatchedTrade> {
    let registry = InstrumentRegistry::global();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..TRADES)
        .map(|n| {
            let i = n % INSTRUMENTS;
            let entry = start_price(i) + rng.range(-300, 300);
            let side = if rng.next().is_multiple_of(2) { Side::Long } else { Side::Short };
            let (sl_dist, tp_dist) = (rng.range(20, 400), rng.range(20, 800));
            let (sl, tp) = match side {
                Side::Long => (entry - sl_dist, entry + tp_dist),
                Side::Short => (entry + sl_dist, entry - tp_dist),
            };
            let price = |v: i64| Price::new(Decimal::new(v, 5)).unwrap();
            WatchedTrade {
                id: TradeId(n as i64),
                instrument: registry.all()[i].index,
                side,
                stop_loss: Some(price(sl)),
                take_profit: Some(price(tp)),
            }
        })
        .collect()
}

/// Ticks as (instrument, bid, ask) in fixed-point, a random walk per instrument with a one-point spread.
fn ticks() -> Vec<(u16, FixedPrice, FixedPrice)> {
    let registry = InstrumentRegistry::global();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut mids: Vec<i64> = (0..INSTRUMENTS).map(start_price).collect();
    (0..TICKS)
        .map(|_| {
            let i = (rng.next() % INSTRUMENTS as u64) as usize;
            mids[i] += rng.range(-3, 4);
            let bid = mids[i] * 1000;
            (registry.all()[i].index, FixedPrice(bid), FixedPrice(bid + 1000))
        })
        .collect()
}

fn build(trades: &[WatchedTrade]) -> TriggerBook {
    let mut book = TriggerBook::new();
    for t in trades {
        book.insert(*t);
    }
    book
}

fn run(book: &mut TriggerBook, ticks: &[(u16, FixedPrice, FixedPrice)]) -> usize {
    let mut fired: Vec<Trigger> = Vec::with_capacity(64);
    let mut closed = 0;
    for &(i, bid, ask) in ticks {
        book.on_tick(i, bid, ask, &mut fired);
        closed += fired.len();
        fired.clear();
    }
    closed
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn report_memory_and_hits() {
    let trades = trades();
    let ticks = ticks();
    let before = rss_bytes();
    let mut book = build(&trades);
    let after = rss_bytes();
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "trigger book: {} open trades, RSS growth {} bytes = {:.1} bytes per open trade",
            book.len(),
            a.saturating_sub(b),
            a.saturating_sub(b) as f64 / book.len() as f64
        );
    }
    let closed = run(&mut book, &ticks);
    println!("trigger book: {TICKS} ticks closed {closed} of {TRADES} trades");
}

fn bench(c: &mut Criterion) {
    let trades = trades();
    let ticks = ticks();
    let mut group = c.benchmark_group("trigger_book");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TICKS as u64));
    group.bench_function("100k_trades_1M_ticks_20_instruments", |b| {
        b.iter_batched(|| build(&trades), |mut book| run(&mut book, &ticks), BatchSize::LargeInput)
    });
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    report_memory_and_hits();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
