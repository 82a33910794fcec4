//! `signalpost scan`: the signals the engine would have sent on a history, one per line.

use super::candles::load_series;
use super::model::load_model;
use crate::scanner::to_signal;
use chrono::DateTime;
use engine::reversal::ReversalScanner;
use market::PriceSide;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[arg(long)]
    pub candles: PathBuf,
    #[arg(long)]
    pub symbol: String,
    #[arg(long)]
    pub timeframe: String,
    /// Print one JSON object per signal.
    #[arg(long)]
    pub json: bool,
    /// Only signals at or above this confidence (0–1).
    #[arg(long, default_value_t = 0.0)]
    pub min_confidence: f64,
    /// A model file other than the shipped one.
    #[arg(long, env = "SIGNALPOST_MODEL")]
    pub model: Option<PathBuf>,
    /// For bid/ask files: which prices make the candles.
    #[arg(long, default_value = "mid")]
    pub price: PriceSide,
}

#[derive(Debug, Serialize)]
struct ScanLine {
    time: String,
    symbol: String,
    timeframe: String,
    side: String,
    entry: f64,
    stop_loss: f64,
    take_profit: f64,
    confidence: f64,
    stage1_prob: f64,
    stage2_prob: f64,
    model_version: String,
}

fn round(x: f64, places: u32) -> f64 {
    let f = 10f64.powi(places as i32);
    (x * f).round() / f
}

pub fn run(args: ScanArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.min_confidence) {
        anyhow::bail!("--min-confidence must be between 0 and 1, got {}", args.min_confidence);
    }
    let series = load_series(&args.candles, &args.symbol, &args.timeframe, args.price)?;
    let model = load_model(args.model.as_deref())?;
    let mut scanner = ReversalScanner::new(model, series.timeframe.seconds());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for bar in &series.bars {
        let Some(found) = scanner.on_bar(bar) else { continue };
        if found.confidence < args.min_confidence {
            continue;
        }
        // The same conversion serve uses, so a level that cannot be a valid signal is never printed.
        let signal = match to_signal(&found, series.instrument, series.timeframe) {
            Ok(s) => s,
            Err(error) => {
                tracing::debug!(%error, "candidate skipped");
                continue;
            }
        };
        let time = DateTime::from_timestamp(found.close_time, 0).unwrap_or_default();
        let level = |p: Option<domain::Price>| p.map_or(f64::NAN, |p| p.value().try_into().unwrap_or(f64::NAN));
        let line = ScanLine {
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            symbol: series.instrument.symbol.to_string(),
            timeframe: series.timeframe.to_string(),
            side: signal.side.to_string(),
            entry: match signal.entry {
                domain::Entry::Price { price } => level(Some(price)),
                _ => f64::NAN,
            },
            stop_loss: level(signal.stop_loss),
            take_profit: level(signal.take_profits.first().copied()),
            confidence: round(found.confidence, 4),
            stage1_prob: round(found.stage1_prob, 4),
            stage2_prob: round(found.stage2_prob, 4),
            model_version: found.model_version.clone(),
        };
        use std::io::Write;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        } else {
            writeln!(
                out,
                "{} {} {} {:5} entry {} sl {} tp {} confidence {:.0}% ({})",
                line.time,
                line.symbol,
                line.timeframe,
                line.side.to_uppercase(),
                line.entry,
                line.stop_loss,
                line.take_profit,
                line.confidence * 100.0,
                found.triggers.join("+"),
            )?;
        }
    }
    Ok(())
}
