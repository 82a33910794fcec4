//! `signalpost train`: builds stage-1 candidates from candle files, evaluates stage 2 walk-forward, prints
//! the out-of-sample report, and writes a model fitted on all the data.

use anyhow::Context;
use engine::reversal::{DetectorParams, EvaluationReport, TrainingOptions, evaluate, train as fit};
use market::{LoadOptions, PriceSide};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Candle files (CSV, optionally gzipped); each file's timeframe is read from its spacing.
    #[arg(long, num_args = 1.., required = true)]
    pub candles: Vec<PathBuf>,
    /// Where to write the model.
    #[arg(long)]
    pub out: PathBuf,
    /// Bars a candidate has to reach its take profit or stop loss.
    #[arg(long, default_value_t = 48)]
    pub horizon: usize,
    /// Take profit as a multiple of the risk.
    #[arg(long, default_value_t = 2.0)]
    pub reward_risk: f64,
    /// Walk-forward test folds after the first 40% of candidates.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = 1.0)]
    pub l2: f64,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    #[arg(long, default_value = "mid")]
    pub price: PriceSide,
}

/// A short, stable fingerprint of the fitted numbers, so two different models never share a version.
fn fingerprint(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", hash >> 32)
}

pub fn print_report(report: &EvaluationReport) {
    let pct = |x: f64| format!("{:5.1}%", x * 100.0);
    println!(
        "walk-forward evaluation: {} candidates, {} out of sample in {} folds",
        report.candidates, report.out_of_sample, report.folds
    );
    println!("  out-of-sample win rate (take profit first): {}", pct(report.base_rate));
    println!("  AUC            stage 2 {:.3}   stage-1 rates {:.3}   no skill 0.500", report.auc, report.stage1_auc);
    println!(
        "  Brier score    stage 2 {:.4}  base-rate forecast {:.4}  (lower is better)",
        report.brier, report.brier_baseline
    );
    println!("  calibration by confidence decile:");
    println!("    {:>6} {:>10} {:>10}", "count", "predicted", "observed");
    for bin in &report.calibration {
        println!("    {:>6} {:>10} {:>10}", bin.count, pct(bin.mean_predicted), pct(bin.observed_win_rate));
    }
    println!("  selection          trades  win rate   mean R");
    let b = &report.baseline;
    println!("    every candidate  {:>6}  {}  {:>+7.3}", b.trades, pct(b.win_rate), b.mean_r);
    for t in &report.thresholds {
        println!(
            "    confidence ≥ {:<4} {:>6}  {}  {:>+7.3}",
            t.threshold.unwrap_or_default(),
            t.trades,
            pct(t.win_rate),
            t.mean_r
        );
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if !(args.reward_risk > 0.0 && args.reward_risk.is_finite()) {
        anyhow::bail!("--reward-risk must be a positive number, got {}", args.reward_risk);
    }
    if args.horizon == 0 {
        anyhow::bail!("--horizon must be at least 1 bar");
    }
    let params = DetectorParams { reward_risk: args.reward_risk, ..DetectorParams::default() };
    let options = TrainingOptions { l2: args.l2, horizon: args.horizon, ..TrainingOptions::default() };
    let mut samples = Vec::new();
    let mut series = Vec::new();
    for path in &args.candles {
        let file = market::load_candle_file(path, &LoadOptions::with_price(args.price))
            .with_context(|| format!("could not load {}", path.display()))?;
        let timeframe = market::infer_timeframe(&file.candles)
            .with_context(|| format!("{}: too few candles to tell their timeframe", path.display()))?;
        super::candles::report_gaps(path, &file.candles, timeframe);
        let bars: Vec<engine::Bar> = file.candles.iter().map(engine::Bar::from).collect();
        let found = evaluate::collect_samples(&bars, params, args.horizon, timeframe.seconds());
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        println!("{name}: {} {timeframe} bars, {} labelled candidates", bars.len(), found.len());
        series.push(format!("{name} ({timeframe}, {} bars)", bars.len()));
        samples.extend(found);
    }
    let report = evaluate::walk_forward(&samples, args.folds, 0.4, params, options)?;
    print_report(&report);
    if let Some(path) = &args.report_json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    let mut model = fit(&samples, params, options, String::new(), series)?;
    model.version = format!("reversal-lr-v1-{}", fingerprint(&model.to_json()));
    std::fs::write(&args.out, model.to_json()).with_context(|| format!("could not write {}", args.out.display()))?;
    println!("model {} written to {}", model.version, args.out.display());
    Ok(())
}
