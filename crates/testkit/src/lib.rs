//! Test support shared by every crate's tests: fresh SQLite and PostgreSQL databases, `spawn_app` for
//! black-box tests of the real application on port 0, and candle fixtures. Fakes of external APIs
//! (Discord, Binance, Alpaca, OANDA, Twelve Data, Polar) join here as the issues that need them land.

pub mod alpaca;
pub mod app;
pub mod binance;
pub mod binance_stream;
pub mod browser;
pub mod db;
pub mod discord;
pub mod feed_harness;
pub mod fixtures;
pub mod oanda;
mod scripted_http;
pub mod twelvedata;
pub mod wait;

pub use app::{AppOptions, ConfigTweak, DiscordOptions, TestApp, spawn_app, spawn_app_on, write_candles};
