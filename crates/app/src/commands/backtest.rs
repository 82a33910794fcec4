//! `signalpost backtest`: runs a strategy through the engine's backtester over a candle file and reports
//! the trades' metrics, as a readable report or one JSON object, with the equity curve optionally written
//! as CSV and as an SVG chart.
//!
//! The app's part is the I/O around the engine: loading and checking the file, choosing the strategy, timing
//! the run, and writing what it produced. The trading rules and metric definitions live in
//! `engine::backtest`.

use super::candles::{LoadedSeries, load_series};
use super::report;
use crate::Config;
use anyhow::Context;
use domain::{Instrument, Lots, Timeframe};
use engine::backtest::{self, BacktestConfig, BacktestResult, BarPrice};
use engine::strategy::Strategy;
use market::PriceSide;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyName {
    /// The two-stage reversal scanner: enters on each signal with its stop loss and take profit.
    Reversal,
    /// SMA(10) against SMA(30) on closes, stop-and-reverse on every cross.
    SmaCross,
}

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// Candle file: CSV or gzipped CSV, plain OHLC or the bid/ask layout.
    #[arg(long)]
    pub candles: PathBuf,
    #[arg(long)]
    pub symbol: String,
    /// The file's timeframe (1m 5m 15m 30m 1h 4h 1d); it must agree with the spacing of its candles.
    #[arg(long)]
    pub timeframe: String,
    #[arg(long, value_enum, default_value = "reversal")]
    pub strategy: StrategyName,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// For bid/ask files: which prices make the candles the strategy sees. Fills use the bid and ask either way.
    #[arg(long, default_value = "mid")]
    pub price: PriceSide,
    /// Size of every position (0.01 to 100).
    #[arg(long, default_value = "1")]
    pub lots: String,
    /// Starting balance in the account currency.
    #[arg(long, default_value = "10000")]
    pub balance: String,
    /// Write the closed-trade equity curve here as CSV (`time,equity`).
    #[arg(long)]
    pub equity_csv: Option<PathBuf>,
    /// Write the closed-trade equity curve here as an SVG chart.
    #[arg(long)]
    pub equity_svg: Option<PathBuf>,
    /// Write every trade here as CSV.
    #[arg(long)]
    pub trades_csv: Option<PathBuf>,
    /// `reversal` only: a model file other than the shipped one.
    #[arg(long, env = "SIGNALPOST_MODEL")]
    pub model: Option<PathBuf>,
    /// `reversal` only: take signals at or above this confidence (0–1).
    #[arg(long, default_value_t = 0.0)]
    pub min_confidence: f64,
}

/// The inputs of one run, checked.
#[derive(Debug)]
struct Settings {
    lots: Lots,
    balance: Decimal,
}

fn settings(args: &BacktestArgs) -> anyhow::Result<Settings> {
    let lots = Lots::parse(&args.lots).with_context(|| format!("--lots {:?}", args.lots))?;
    let balance: Decimal = args
        .balance
        .trim()
        .parse()
        .ok()
        .filter(|b| *b > Decimal::ZERO)
        .with_context(|| format!("--balance {:?} is not a positive amount", args.balance))?;
    if !(0.0..=1.0).contains(&args.min_confidence) {
        anyhow::bail!("--min-confidence must be between 0 and 1, got {}", args.min_confidence);
    }
    Ok(Settings { lots, balance })
}

/// The reversal strategy for `instrument` on `timeframe`, from the shipped model or `model`. The one place
/// the backtest builds it, so it stays the scanner `serve` and `scan` run.
pub fn reversal_strategy(
    _instrument: &Instrument,
    timeframe: Timeframe,
    model: Option<&Path>,
    min_confidence: f64,
) -> anyhow::Result<Box<dyn Strategy>> {
    let model = super::model::load_model(model)?;
    let scanner = engine::reversal::ReversalScanner::new(model, timeframe.seconds());
    Ok(Box::new(engine::reversal::ReversalStrategy::new(scanner, min_confidence)))
}

fn strategy(args: &BacktestArgs, series: &LoadedSeries) -> anyhow::Result<Box<dyn Strategy>> {
    match args.strategy {
        StrategyName::SmaCross => Ok(Box::new(engine::strategies::SmaCross::default())),
        StrategyName::Reversal => {
            reversal_strategy(series.instrument, series.timeframe, args.model.as_deref(), args.min_confidence)
        }
    }
}

/// What a run produced, with what it was run on.
#[derive(Debug)]
pub struct Outcome {
    pub series: LoadedSeries,
    pub result: BacktestResult,
    pub account_currency: String,
    pub lots: Lots,
    pub price: PriceSide,
    /// Wall time of the engine's run alone, without loading the file or writing anything.
    pub seconds: f64,
}

/// Loads, runs and times a backtest; writes nothing.
pub fn backtest(config: &Config, args: &BacktestArgs) -> anyhow::Result<Outcome> {
    let settings = settings(args)?;
    let series = load_series(&args.candles, &args.symbol, &args.timeframe, args.price)?;
    let mut strategy = strategy(args, &series)?;
    let spreads: Option<Vec<f64>> =
        series.file.spreads.as_ref().map(|s| s.iter().map(|d| d.to_f64().unwrap_or(f64::NAN)).collect());
    let run_config = BacktestConfig {
        lots: settings.lots,
        account_currency: config.account_currency.clone(),
        initial_balance: settings.balance,
        rates: Default::default(),
        bar_price: match args.price {
            PriceSide::Mid => BarPrice::Mid,
            PriceSide::Bid => BarPrice::Bid,
            PriceSide::Ask => BarPrice::Ask,
        },
    };
    let started = Instant::now();
    let result = backtest::run(strategy.as_mut(), series.instrument, &series.bars, spreads.as_deref(), &run_config)
        .with_context(|| format!("backtest of {} failed", args.candles.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Outcome {
        series,
        result,
        account_currency: config.account_currency.clone(),
        lots: settings.lots,
        price: args.price,
        seconds,
    })
}

pub fn run(config: &Config, args: BacktestArgs) -> anyhow::Result<()> {
    let outcome = backtest(config, &args)?;
    if let Some(path) = &args.equity_csv {
        std::fs::write(path, report::equity_csv(&outcome.result.equity))
            .with_context(|| format!("could not write the equity curve to {}", path.display()))?;
    }
    if let Some(path) = &args.trades_csv {
        std::fs::write(path, report::trades_csv(&outcome.result.trades))
            .with_context(|| format!("could not write the trades to {}", path.display()))?;
    }
    if let Some(path) = &args.equity_svg {
        let svg = report::equity_svg(&outcome)?;
        std::fs::write(path, svg).with_context(|| format!("could not write the equity chart to {}", path.display()))?;
    }
    if args.json {
        println!("{}", report::json(&outcome));
    } else {
        print!("{}", report::text(&outcome));
    }
    Ok(())
}
