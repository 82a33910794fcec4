//! Market data compiled into the binary, so `signalpost serve` has a market to replay from any directory
//! and on a machine with no data files: EURUSD hourly 2007–2018 (QuantConnect Lean, OANDA quotes) and
//! BTCUSD daily 2017–2021 (Stock.Indicators). Both are Apache-2.0; see `data/SOURCE.md` in this crate.

use crate::candles::{LoadOptions, parse_candles};
use crate::error::LoadError;
use crate::replay::ReplaySeries;
use domain::{Symbol, Timeframe};

/// One compiled-in candle file.
#[derive(Debug, Clone, Copy)]
pub struct BundledFile {
    pub name: &'static str,
    pub symbol: &'static str,
    pub timeframe: Timeframe,
    pub bytes: &'static [u8],
}

/// The compiled-in files, in the order [`bundled_series`] returns them.
pub const BUNDLED_FILES: [BundledFile; 2] = [
    BundledFile {
        name: "lean_oanda_EURUSD_H1_2007-2018.csv.gz",
        symbol: "EURUSD",
        timeframe: Timeframe::H1,
        bytes: include_bytes!("../data/lean_oanda_EURUSD_H1_2007-2018.csv.gz"),
    },
    BundledFile {
        name: "stockindicators_bitcoin_BTCUSD_D1_2017-2021.csv",
        symbol: "BTCUSD",
        timeframe: Timeframe::D1,
        bytes: include_bytes!("../data/stockindicators_bitcoin_BTCUSD_D1_2017-2021.csv"),
    },
];

/// The bundled series, ready for a [`crate::ReplayFeed`]: EURUSD 1h (mid prices) and BTCUSD 1d.
pub fn bundled_series() -> Result<Vec<ReplaySeries>, LoadError> {
    BUNDLED_FILES
        .iter()
        .map(|file| {
            let candles = parse_candles(file.bytes, file.name, &LoadOptions::default())?;
            Ok(ReplaySeries::new(Symbol::normalize(file.symbol), file.timeframe, candles))
        })
        .collect()
}
