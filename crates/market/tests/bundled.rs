//! The data compiled into the binary loads, matches the files in data/, and names instruments we trade.

use domain::{InstrumentRegistry, Timeframe};
use market::{BUNDLED_FILES, LoadOptions, bundled_series, infer_timeframe, load_candles};
use std::path::PathBuf;

#[test]
fn bundled_series_load_with_the_registry_symbols_and_their_timeframes() {
    let series = bundled_series().unwrap();
    let summary: Vec<_> =
        series.iter().map(|s| (s.symbol.as_str().to_string(), s.timeframe, s.candles.len())).collect();
    assert_eq!(
        summary,
        vec![("EURUSD".to_string(), Timeframe::H1, 74_439), ("BTCUSD".to_string(), Timeframe::D1, 1_246),]
    );
    for s in &series {
        InstrumentRegistry::global().get(s.symbol.as_str()).unwrap();
        assert_eq!(infer_timeframe(&s.candles), Some(s.timeframe), "{}", s.symbol);
        assert!(s.ticks.is_none());
    }
}

#[test]
fn compiled_in_bytes_are_the_files_in_data() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    for file in BUNDLED_FILES {
        let path = dir.join(file.name);
        assert_eq!(std::fs::read(&path).unwrap(), file.bytes, "{}", file.name);
        let from_disk = load_candles(&path, &LoadOptions::default()).unwrap();
        assert!(!from_disk.is_empty());
    }
}
