//! Engine commands: `scan`, `train` and `backtest`, each reading candle files and running the engine
//! exactly as `serve` does.

pub mod backtest;
pub mod candles;
pub mod model;
pub mod report;
pub mod scan;
pub mod train;
