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

/// A fake's listener whose connections have TCP_NODELAY set. Without it, a reply or frame written soon after
/// the previous one waits for the client's delayed ACK (40 ms on Linux), a delay real vendors do not add
/// and that would dominate every latency figure measured against the fakes.
pub(crate) fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    })
}
