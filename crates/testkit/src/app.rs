//! `spawn_app`: the real Signalpost on port 0 with a fresh database and a replay the test chooses, plus the
//! bus it publishes on, already subscribed, so a test waits for events instead of sleeping.

use crate::db::{DbGuard, fresh_database_url};
use bus::{Bus, Event, InProcessBus, Subscription};
use signalpost::{Application, Config, config::Secret};
use std::{path::PathBuf, sync::Arc, time::Duration};
use store::Store;

/// What to start the app with; `Default` replays nothing but an empty day of EURUSD.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// `SYMBOL:TIMEFRAME:PATH` replay series; empty means the bundled data.
    pub replay_series: Vec<String>,
    /// Candles per second; 0 is unpaced.
    pub replay_speed: f64,
    /// `SYMBOL:PATH` tick files replayed instead of ticks made from the candles.
    pub replay_ticks: Vec<String>,
    /// Discord settings; `None` leaves Discord off.
    pub discord: Option<DiscordOptions>,
    /// The app's clock; `None` is the system clock. Pass a `domain::ManualClock` to move time without sleeping.
    pub clock: Option<Arc<dyn domain::Clock>>,
    /// Dashboard settings; `None` is the defaults without the first-run `admin` account (tests make their users).
    pub web: Option<signalpost::config::WebConfig>,
    /// Holds the replay at a market time the test moves (`market::ReplayGate::closed()` to start held).
    pub replay_gate: Option<market::ReplayGate>,
    /// `DISCORD_GATEWAY_URL`: a `testkit::discord::gateway::FakeGateway`'s URL. `None` keeps the gateway off
    /// even with a bot token, so no test reaches for the real Discord. (Here rather than in [`DiscordOptions`],
    /// whose struct literals in existing tests name every field.)
    pub discord_gateway_url: Option<String>,
    /// `ALPACA_BASE_URL`: a [`crate::alpaca::FakeAlpaca`]'s URL for the copier's Alpaca followers.
    pub alpaca_base_url: Option<String>,
    /// `BINANCE_BASE_URL`: a fake Binance's URL for the copier's Binance followers.
    pub binance_base_url: Option<String>,
    /// `SIGNALPOST_SECRET_KEY`; `None` is [`TEST_SECRET_KEY`], so no test writes a key file into the tree.
    pub secret_key: Option<String>,
    /// Applied last to the finished configuration: for settings no other option covers (a live feed's URLs,
    /// say), so a new test need not grow this struct.
    pub configure: Option<ConfigTweak>,
}

/// A change to the test app's [`Config`], run after every other option was applied.
#[derive(Clone)]
pub struct ConfigTweak(pub Arc<dyn Fn(&mut Config) + Send + Sync>);

impl ConfigTweak {
    pub fn new(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        ConfigTweak(Arc::new(tweak))
    }
}

impl std::fmt::Debug for ConfigTweak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigTweak(..)")
    }
}

/// The secret key test apps seal broker keys with unless a test sets its own: base64 of 32 bytes.
pub const TEST_SECRET_KEY: &str = "c2lnbmFscG9zdC10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=";

/// Discord settings for a test app: point `api_base` at a `FakeDiscord`.
#[derive(Debug, Clone, Default)]
pub struct DiscordOptions {
    pub token: Option<String>,
    pub application_id: Option<String>,
    pub public_key_hex: Option<String>,
    pub api_base: Option<String>,
}

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub store: Arc<dyn Store>,
    pub database_url: String,
    pub client: reqwest::Client,
    app: Option<Application>,
    events: Box<dyn Subscription>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request reaches the app")
    }

    /// The next bus event matching `wanted`, or a panic after `within`.
    pub async fn wait_for_event(&mut self, within: Duration, wanted: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.next())
                .await
                .expect("the awaited event did not arrive in time")
                .expect("the bus stays open");
            if wanted(&event) {
                return event;
            }
        }
    }

    /// Waits until the replay has played and the monitor applied every tick.
    /// The next event on the bus within `within`, or `None`: for benchmarks that must not panic when a candle
    /// makes no signal.
    pub async fn next_event(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.events.next()).await.ok()?.ok()
    }

    pub async fn wait_for_replay_end(&mut self) {
        self.wait_for_event(Duration::from_secs(60), |e| matches!(e, Event::FeedFinished { .. })).await;
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await.expect("the app stops cleanly");
        }
    }
}

/// Starts the app against `database_url` (migrating it) with `options`.
pub async fn spawn_app_on(database_url: &str, options: AppOptions) -> TestApp {
    let defaults = Config::default();
    let mut config = Config {
        database_url: Secret::new(database_url),
        bind: "127.0.0.1:0".into(),
        replay: signalpost::config::ReplayConfig {
            series: options.replay_series,
            speed: options.replay_speed,
            ticks: options.replay_ticks,
            gate: options.replay_gate,
            ..defaults.replay.clone()
        },
        monitor: signalpost::config::MonitorConfig { sync_interval_ms: 100, ..defaults.monitor.clone() },
        web: options.web.unwrap_or(signalpost::config::WebConfig {
            first_run_admin: false,
            ..signalpost::config::WebConfig::default()
        }),
        discord: match options.discord {
            Some(d) => signalpost::config::DiscordConfig {
                token: d.token.map(Secret::new),
                application_id: d.application_id,
                public_key: d.public_key_hex,
                api_base: d.api_base,
                gateway_url: Some(options.discord_gateway_url.unwrap_or_else(|| "off".into())),
            },
            None => defaults.discord.clone(),
        },
        alpaca: signalpost::config::ExchangeConfig { base_url: options.alpaca_base_url, ..defaults.alpaca.clone() },
        binance: signalpost::config::ExchangeConfig { base_url: options.binance_base_url, ..defaults.binance.clone() },
        secret_key: Some(Secret::new(options.secret_key.unwrap_or_else(|| TEST_SECRET_KEY.to_string()))),
        ..defaults
    };
    if let Some(tweak) = &options.configure {
        (tweak.0)(&mut config);
    }
    let bus = Arc::new(InProcessBus::default());
    let events = bus.subscribe().await.expect("in-process subscribe cannot fail");
    let clock = options.clock.unwrap_or_else(|| Arc::new(domain::SystemClock));
    let app = Application::build_with_bus(config, clock, bus).await.expect("the app starts");
    TestApp {
        address: format!("http://{}", app.address),
        store: app.store.clone(),
        database_url: database_url.to_string(),
        client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client"),
        app: Some(app),
        events,
    }
}

/// Starts the app on a fresh database (SQLite, or PostgreSQL when `TEST_DATABASE_URL` is set).
pub async fn spawn_app(options: AppOptions) -> (TestApp, DbGuard) {
    let (url, guard) = fresh_database_url().await;
    (spawn_app_on(&url, options).await, guard)
}

/// Writes candles as CSV (`time,open,high,low,close,volume`) to a temporary file and returns its path;
/// the directory lives as long as the returned guard.
pub fn write_candles(rows: &[(&str, &str, &str, &str, &str)]) -> (PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("candles.csv");
    let mut text = String::from("time,open,high,low,close,volume\n");
    for (time, open, high, low, close) in rows {
        text.push_str(&format!("{time},{open},{high},{low},{close},0\n"));
    }
    std::fs::write(&path, text).expect("write candles");
    (path, dir)
}
