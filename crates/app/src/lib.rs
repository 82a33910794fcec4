//! The `signalpost` binary's library: configuration, start-up, the services that wire the core crates to
//! the store, the bus and the market feed, the HTTP edge, and the command-line commands.
//!
//! `main.rs` only parses arguments and calls into here, so black-box tests can start the very same
//! application on port 0 with a fresh database.

pub mod candle_store;
pub mod cli;
pub mod commands;
pub mod config;
pub mod copier;
pub mod feed_health;
pub mod feed_subscriptions;
pub mod gateway;
pub mod http;
pub mod interactions;
pub mod metrics;
pub mod monitor;
pub mod outbox;
pub mod providers;
pub mod router;
pub mod scanner;
pub mod slash;
pub mod startup;
pub mod subscriptions;
pub mod trade_notices;

pub use config::Config;
pub use startup::Application;
