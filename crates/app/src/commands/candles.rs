//! Loading a candle file for an engine command, with the checks every command shares.

use anyhow::Context;
use domain::{Instrument, InstrumentRegistry, Timeframe};
use market::{CandleFile, LoadOptions, PriceSide};
use std::path::Path;

/// A candle file checked against the symbol and timeframe the user named.
#[derive(Debug)]
pub struct LoadedSeries {
    pub instrument: &'static Instrument,
    pub timeframe: Timeframe,
    pub file: CandleFile,
    pub bars: Vec<engine::Bar>,
}

/// Loads `path`, and refuses a timeframe that disagrees with the spacing of the file's candles.
pub fn load_series(path: &Path, symbol: &str, timeframe: &str, price: PriceSide) -> anyhow::Result<LoadedSeries> {
    let instrument = InstrumentRegistry::global().get(symbol)?;
    let timeframe = Timeframe::parse(timeframe)?;
    let file = market::load_candle_file(path, &LoadOptions::with_price(price))
        .with_context(|| format!("could not load {}", path.display()))?;
    check_timeframe(&file, timeframe, path)?;
    report_gaps(path, &file.candles, timeframe);
    let bars = file.candles.iter().map(engine::Bar::from).collect();
    Ok(LoadedSeries { instrument, timeframe, file, bars })
}

fn check_timeframe(file: &CandleFile, timeframe: Timeframe, path: &Path) -> anyhow::Result<()> {
    if let Some(found) = market::infer_timeframe(&file.candles)
        && found != timeframe
    {
        anyhow::bail!("{} holds {found} candles, not {timeframe}: pass --timeframe {found}", path.display());
    }
    Ok(())
}

/// Says on stderr how many stretches of missing candles a file has. Indicators run across a gap as if the
/// bars were consecutive, which is how a trader's chart shows a weekend; the note lets a user see that
/// holes are there at all.
pub fn report_gaps(path: &Path, candles: &[domain::Candle], timeframe: Timeframe) {
    let gaps = market::find_gaps(candles, timeframe);
    if let Some(largest) = gaps.iter().max_by_key(|g| g.missing) {
        eprintln!(
            "note: {} has {} gaps ({} missing {timeframe} candles in all; the largest, {} candles, after {})",
            path.display(),
            gaps.len(),
            gaps.iter().map(|g| g.missing).sum::<u64>(),
            largest.missing,
            largest.from.to_rfc3339(),
        );
    }
}
