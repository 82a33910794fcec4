//! Configuration: built-in defaults, then `signalpost.toml` (or the file `SIGNALPOST_CONFIG` names), then
//! environment variables, each overriding the last. Secrets are wrapped so they never reach a log line.

use anyhow::Context;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A value that must not be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Config {
    /// `sqlite://signalpost.db` or `postgres://…`.
    pub database_url: Secret,
    pub bind: String,
    /// `replay` (the default), `binance`, `twelvedata` or `oanda`.
    pub feed: String,
    pub nats_url: Option<String>,
    /// Subject prefix on NATS, so several deployments can share one server.
    pub bus_prefix: String,
    /// Account currency that P&L is reported in.
    pub account_currency: String,
    pub replay: ReplayConfig,
    pub monitor: MonitorConfig,
    pub discord: DiscordConfig,
    pub binance: ExchangeConfig,
    /// The live Binance market feed (`SIGNALPOST_FEED=binance`); its REST base is `binance.base_url`.
    #[serde(default)]
    pub binance_feed: BinanceFeedSettings,
    /// The live Twelve Data feed (`SIGNALPOST_FEED=twelvedata`): forex, metals and US stocks by polling.
    #[serde(default)]
    pub twelvedata_feed: TwelveDataFeedSettings,
    /// The live OANDA v20 feed (`SIGNALPOST_FEED=oanda`): forex and metals, candles polled, ticks streamed.
    #[serde(default)]
    pub oanda_feed: OandaFeedSettings,
    pub alpaca: ExchangeConfig,
    /// `SIGNALPOST_SECRET_KEY`: base64 of 32 bytes, the key that seals followers' broker API keys. Unset:
    /// `signalpost.key` in the data directory (the SQLite file's, else the working directory), generated on
    /// first start.
    pub secret_key: Option<Secret>,
    /// A reversal model file to use instead of the one that ships with the binary.
    pub model_path: Option<std::path::PathBuf>,
    /// The dashboard: its public address and Discord sign-in.
    pub web: WebConfig,
    /// How old a queued signal notification's signal may be and still be sent when Discord comes on; unset:
    /// the signal's timeframe, at least an hour.
    #[serde(default)]
    pub notification_ttl_minutes: Option<u64>,
    /// When a live feed counts as unhealthy on `/healthz` and the dashboard.
    #[serde(default)]
    pub feed_health: FeedHealthSettings,
    /// How live feeds follow users' settings, and how the scanner warms up from the candle store.
    #[serde(default)]
    pub live: LiveSettings,
}

/// Live feeds re-derive their pairs when settings change (a `SettingsChanged` event) and every
/// `subscription_recheck_secs` as a safety net for changes no event announced (another process without
/// NATS, a database edited by hand).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LiveSettings {
    /// `SIGNALPOST_SUBSCRIPTION_RECHECK_SECS`; at least 1.
    pub subscription_recheck_secs: u64,
    /// Stored candles a scanner series reads before its first live candle (`SIGNALPOST_SCANNER_WARMUP_CANDLES`);
    /// 0 turns the warm-up from the store off.
    pub scanner_warmup_candles: u32,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings { subscription_recheck_secs: 60, scanner_warmup_candles: crate::scanner::DEFAULT_WARMUP_CANDLES }
    }
}

/// How long a live feed may be down before `/healthz` answers 503 and the dashboard shows a banner.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct FeedHealthSettings {
    /// Seconds down (or not yet connected) before the feed is unhealthy (`SIGNALPOST_FEED_DOWN_GRACE_SECS`).
    pub down_grace_secs: u64,
}

impl Default for FeedHealthSettings {
    fn default() -> Self {
        FeedHealthSettings { down_grace_secs: crate::feed_health::DEFAULT_DOWN_GRACE.as_secs() }
    }
}

/// The dashboard (`web` crate): where people reach it, and Discord OAuth2 sign-in when configured.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct WebConfig {
    /// The URL people open, e.g. `https://signals.example.com`; sign-in links and the OAuth redirect start
    /// here, and `https` makes the session cookie Secure. Unset: `http://` and the listener's address.
    pub public_url: Option<String>,
    pub discord_client_id: Option<String>,
    pub discord_client_secret: Option<Secret>,
    /// Discord's site (`https://discord.com`), or a fake's.
    pub discord_oauth_base: Option<String>,
    /// When no user has the admin role, `serve` creates `admin` and prints a one-time sign-in link.
    pub first_run_admin: bool,
    /// The shared secret TradingView alerts carry (`SIGNALPOST_TRADINGVIEW_SECRET`); unset: the webhook
    /// refuses every alert.
    #[serde(default)]
    pub tradingview_secret: Option<Secret>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            public_url: None,
            discord_client_id: None,
            discord_client_secret: None,
            discord_oauth_base: None,
            first_run_admin: true,
            tradingview_secret: None,
        }
    }
}

/// Discord's site, where its OAuth2 pages and API live.
pub const DISCORD_OAUTH_BASE: &str = "https://discord.com";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ReplayConfig {
    /// Candles per second; 0 replays as fast as the services keep up.
    pub speed: f64,
    /// `SYMBOL:TIMEFRAME:PATH` entries; empty means the bundled data (EURUSD 1h, BTCUSD 1d).
    pub series: Vec<String>,
    /// `SYMBOL:PATH` tick files; a series with one replays its real ticks instead of ticks made from candles.
    pub ticks: Vec<String>,
    /// Skip candles before this time (RFC 3339).
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Holds the replay at a point in market time until the holder moves it; only code sets one (tests and
    /// demonstrations that act on a signal before the market goes on), never a file or the environment.
    #[serde(skip)]
    pub gate: Option<market::ReplayGate>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MonitorConfig {
    /// How often the monitor looks for trades opened or closed by another process, in milliseconds.
    pub sync_interval_ms: u64,
    /// Every this many syncs it reloads the whole open set, catching anything a tail could miss.
    pub full_reload_every: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct DiscordConfig {
    pub token: Option<Secret>,
    pub application_id: Option<String>,
    pub public_key: Option<String>,
    pub api_base: Option<String>,
    /// Discord's gateway when unset; `ws://…`/`wss://…` for a fake or proxy; `off` for no gateway connection.
    pub gateway_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ExchangeConfig {
    pub api_key: Option<Secret>,
    pub api_secret: Option<Secret>,
    pub base_url: Option<String>,
}

/// The live Binance feed. The pairs it streams come from the users' settings at start (their preferred pairs
/// × enabled timeframes, USDT crypto pairs only), plus `pairs`; with no users and no `pairs`, BTCUSDT 1h.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct BinanceFeedSettings {
    /// `spot` or `futures` (USDⓈ-M).
    pub market: String,
    /// The WebSocket base (`BINANCE_STREAM_URL`); unset: Binance's for the market.
    pub stream_url: Option<String>,
    /// Extra `SYMBOL:TIMEFRAME` pairs to stream whatever the settings say.
    pub pairs: Vec<String>,
    /// Candles fetched for a pair the candle store has none of.
    pub warmup_candles: u32,
    /// Binance ends connections after 24 hours; ours are retired after this many seconds.
    pub connection_lifetime_secs: u64,
}

impl Default for BinanceFeedSettings {
    fn default() -> Self {
        BinanceFeedSettings {
            market: "spot".into(),
            stream_url: None,
            pairs: Vec::new(),
            warmup_candles: 300,
            connection_lifetime_secs: 23 * 3600 + 50 * 60,
        }
    }
}

/// The live Twelve Data feed. Its pairs come from the users' settings like Binance's (forex, metals and stocks
/// only), plus `pairs`; with no users and no `pairs`, EURUSD 1h.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct TwelveDataFeedSettings {
    /// `TWELVEDATA_API_URL`; unset: `https://api.twelvedata.com`.
    pub api_url: Option<String>,
    /// `TWELVEDATA_API_KEY`; required when the feed is `twelvedata`.
    pub api_key: Option<Secret>,
    /// `SIGNALPOST_TWELVEDATA_CREDITS_PER_MINUTE`: the plan's API credits a minute (8 on the free plan).
    pub credits_per_minute: u32,
    /// `SIGNALPOST_TWELVEDATA_CREDITS_PER_DAY`: the plan's API credits a day (800 on the free plan).
    pub credits_per_day: u32,
    /// `SIGNALPOST_TWELVEDATA_PAIRS`: extra `SYMBOL:TIMEFRAME` pairs to poll whatever the settings say.
    pub pairs: Vec<String>,
    /// Candles fetched for a pair the candle store has none of.
    pub warmup_candles: u32,
    /// Seconds after a candle's close before the feed asks for it.
    pub poll_delay_secs: u64,
    /// How often a waiting feed re-reads the clock, in milliseconds; tests on a manual clock set it low.
    pub recheck_ms: u64,
}

impl Default for TwelveDataFeedSettings {
    fn default() -> Self {
        TwelveDataFeedSettings {
            api_url: None,
            api_key: None,
            credits_per_minute: 8,
            credits_per_day: 800,
            pairs: Vec::new(),
            warmup_candles: 300,
            poll_delay_secs: 5,
            recheck_ms: 1000,
        }
    }
}

/// The live OANDA v20 feed. Its pairs come from the users' settings like Binance's (forex and metals only), plus
/// `pairs`; with no users and no `pairs`, EURUSD 1h.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct OandaFeedSettings {
    /// `OANDA_API_URL`; unset: the practice host `https://api-fxpractice.oanda.com` (live:
    /// `https://api-fxtrade.oanda.com`).
    pub api_url: Option<String>,
    /// `OANDA_STREAM_URL`; unset: `https://stream-fxpractice.oanda.com` (live: `https://stream-fxtrade.oanda.com`).
    pub stream_url: Option<String>,
    /// `OANDA_TOKEN`: the account's personal access token; required when the feed is `oanda`.
    pub token: Option<Secret>,
    /// `OANDA_ACCOUNT_ID` (`101-004-1234567-001`); required when the feed is `oanda`.
    pub account_id: Option<String>,
    /// `SIGNALPOST_OANDA_PAIRS`: extra `SYMBOL:TIMEFRAME` pairs to poll whatever the settings say.
    pub pairs: Vec<String>,
    /// `SIGNALPOST_OANDA_PRICE`: `mid` (OANDA's mid-point candles) or `ba` (bid candles, as charts show them).
    pub price: String,
    /// Candles fetched for a pair the candle store has none of (at most 4999).
    pub warmup_candles: u32,
    /// Milliseconds after a candle's close before the feed asks for it.
    pub poll_delay_ms: u64,
    /// How often a waiting feed re-reads the clock, in milliseconds; tests on a manual clock set it low.
    pub recheck_ms: u64,
}

impl Default for OandaFeedSettings {
    fn default() -> Self {
        OandaFeedSettings {
            api_url: None,
            stream_url: None,
            token: None,
            account_id: None,
            pairs: Vec::new(),
            price: "mid".into(),
            warmup_candles: 300,
            poll_delay_ms: 2000,
            recheck_ms: 1000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: Secret::new("sqlite://signalpost.db"),
            bind: "127.0.0.1:8080".into(),
            feed: "replay".into(),
            nats_url: None,
            bus_prefix: "signalpost".into(),
            account_currency: "USD".into(),
            replay: ReplayConfig { speed: 20.0, series: Vec::new(), ticks: Vec::new(), start_at: None, gate: None },
            monitor: MonitorConfig { sync_interval_ms: 1000, full_reload_every: 30 },
            discord: DiscordConfig::default(),
            binance: ExchangeConfig::default(),
            binance_feed: BinanceFeedSettings::default(),
            twelvedata_feed: TwelveDataFeedSettings::default(),
            oanda_feed: OandaFeedSettings::default(),
            alpaca: ExchangeConfig::default(),
            secret_key: None,
            model_path: None,
            web: WebConfig::default(),
            notification_ttl_minutes: None,
            feed_health: FeedHealthSettings::default(),
            live: LiveSettings::default(),
        }
    }
}

/// Environment variable → configuration key, as DESIGN.md names them.
const ENV_KEYS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("SIGNALPOST_BIND", "bind"),
    ("SIGNALPOST_FEED", "feed"),
    ("NATS_URL", "nats_url"),
    ("SIGNALPOST_BUS_PREFIX", "bus_prefix"),
    ("SIGNALPOST_ACCOUNT_CURRENCY", "account_currency"),
    ("SIGNALPOST_REPLAY_SPEED", "replay.speed"),
    ("SIGNALPOST_REPLAY_START_AT", "replay.start_at"),
    ("SIGNALPOST_MONITOR_SYNC_MS", "monitor.sync_interval_ms"),
    ("DISCORD_TOKEN", "discord.token"),
    ("DISCORD_APPLICATION_ID", "discord.application_id"),
    ("DISCORD_PUBLIC_KEY", "discord.public_key"),
    ("DISCORD_API_BASE", "discord.api_base"),
    ("DISCORD_GATEWAY_URL", "discord.gateway_url"),
    ("BINANCE_API_KEY", "binance.api_key"),
    ("BINANCE_API_SECRET", "binance.api_secret"),
    ("BINANCE_BASE_URL", "binance.base_url"),
    ("BINANCE_STREAM_URL", "binance_feed.stream_url"),
    ("SIGNALPOST_BINANCE_MARKET", "binance_feed.market"),
    ("TWELVEDATA_API_URL", "twelvedata_feed.api_url"),
    ("TWELVEDATA_API_KEY", "twelvedata_feed.api_key"),
    ("SIGNALPOST_TWELVEDATA_CREDITS_PER_MINUTE", "twelvedata_feed.credits_per_minute"),
    ("SIGNALPOST_TWELVEDATA_CREDITS_PER_DAY", "twelvedata_feed.credits_per_day"),
    ("OANDA_API_URL", "oanda_feed.api_url"),
    ("OANDA_STREAM_URL", "oanda_feed.stream_url"),
    ("OANDA_TOKEN", "oanda_feed.token"),
    ("OANDA_ACCOUNT_ID", "oanda_feed.account_id"),
    ("SIGNALPOST_OANDA_PRICE", "oanda_feed.price"),
    ("ALPACA_API_KEY_ID", "alpaca.api_key"),
    ("ALPACA_API_SECRET_KEY", "alpaca.api_secret"),
    ("ALPACA_BASE_URL", "alpaca.base_url"),
    ("SIGNALPOST_SECRET_KEY", "secret_key"),
    ("SIGNALPOST_MODEL", "model_path"),
    ("SIGNALPOST_NOTIFICATION_TTL_MINUTES", "notification_ttl_minutes"),
    ("SIGNALPOST_FEED_DOWN_GRACE_SECS", "feed_health.down_grace_secs"),
    ("SIGNALPOST_SUBSCRIPTION_RECHECK_SECS", "live.subscription_recheck_secs"),
    ("SIGNALPOST_SCANNER_WARMUP_CANDLES", "live.scanner_warmup_candles"),
    ("SIGNALPOST_PUBLIC_URL", "web.public_url"),
    ("DISCORD_CLIENT_ID", "web.discord_client_id"),
    ("DISCORD_CLIENT_SECRET", "web.discord_client_secret"),
    ("DISCORD_OAUTH_BASE", "web.discord_oauth_base"),
    ("SIGNALPOST_FIRST_RUN_ADMIN", "web.first_run_admin"),
    ("SIGNALPOST_TRADINGVIEW_SECRET", "web.tradingview_secret"),
];

impl Config {
    /// Defaults ← config file ← environment.
    pub fn load() -> anyhow::Result<Config> {
        let file = std::env::var_os("SIGNALPOST_CONFIG").map(PathBuf::from);
        let explicit = file.is_some();
        let file = file.unwrap_or_else(|| PathBuf::from("signalpost.toml"));
        if explicit && !file.exists() {
            anyhow::bail!("SIGNALPOST_CONFIG names {}, which does not exist", file.display());
        }
        let env = Env::raw()
            .filter_map(|key| {
                ENV_KEYS.iter().find(|(var, _)| key.as_str().eq_ignore_ascii_case(var)).map(|(_, k)| (*k).into())
            })
            .split(".");
        // The replay lists are comma-separated, which figment's env provider would not split.
        let mut figment = Figment::from(Serialized::defaults(Config::default())).merge(Toml::file(&file)).merge(env);
        for (var, key) in [
            ("SIGNALPOST_REPLAY_SERIES", "replay.series"),
            ("SIGNALPOST_REPLAY_TICKS", "replay.ticks"),
            ("SIGNALPOST_BINANCE_PAIRS", "binance_feed.pairs"),
            ("SIGNALPOST_TWELVEDATA_PAIRS", "twelvedata_feed.pairs"),
            ("SIGNALPOST_OANDA_PAIRS", "oanda_feed.pairs"),
        ] {
            if let Ok(value) = std::env::var(var) {
                let list: Vec<String> =
                    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
                figment = figment.merge(Serialized::default(key, list));
            }
        }
        let config: Config = figment
            .extract()
            .with_context(|| format!("invalid configuration (file {}, or environment)", file.display()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !["replay", "binance", "twelvedata", "oanda"].contains(&self.feed.as_str()) {
            anyhow::bail!(
                "SIGNALPOST_FEED={:?} is not available in this version: `replay`, `binance`, `twelvedata` and \
                 `oanda` are implemented",
                self.feed
            );
        }
        if self.feed == "oanda" {
            let oanda = &self.oanda_feed;
            if oanda.token.as_ref().is_none_or(|t| t.expose().trim().is_empty()) {
                anyhow::bail!("SIGNALPOST_FEED=oanda needs OANDA_TOKEN (a personal access token from OANDA's hub)");
            }
            if oanda.account_id.as_deref().is_none_or(|a| a.trim().is_empty()) {
                anyhow::bail!(
                    "SIGNALPOST_FEED=oanda needs OANDA_ACCOUNT_ID (the v20 account, like 101-004-1234567-001)"
                );
            }
        }
        if self.oanda_feed.price != "mid" && self.oanda_feed.price != "ba" {
            anyhow::bail!("SIGNALPOST_OANDA_PRICE must be mid or ba, got {:?}", self.oanda_feed.price);
        }
        if self.oanda_feed.warmup_candles >= market::oanda::MAX_CANDLES_PER_REQUEST || self.oanda_feed.recheck_ms == 0 {
            anyhow::bail!("oanda_feed.warmup_candles must be below 5000 and oanda_feed.recheck_ms at least 1");
        }
        if self.feed == "twelvedata"
            && self.twelvedata_feed.api_key.as_ref().is_none_or(|k| k.expose().trim().is_empty())
        {
            anyhow::bail!("SIGNALPOST_FEED=twelvedata needs TWELVEDATA_API_KEY (a free key at https://twelvedata.com)");
        }
        if self.twelvedata_feed.credits_per_minute == 0 || self.twelvedata_feed.credits_per_day == 0 {
            anyhow::bail!(
                "SIGNALPOST_TWELVEDATA_CREDITS_PER_MINUTE and SIGNALPOST_TWELVEDATA_CREDITS_PER_DAY must be at least 1"
            );
        }
        if self.twelvedata_feed.recheck_ms == 0 {
            anyhow::bail!("twelvedata_feed.recheck_ms must be at least 1");
        }
        if self.binance_feed.market != "spot" && self.binance_feed.market != "futures" {
            anyhow::bail!("SIGNALPOST_BINANCE_MARKET must be spot or futures, got {:?}", self.binance_feed.market);
        }
        if self.binance_feed.connection_lifetime_secs == 0 || self.binance_feed.connection_lifetime_secs > 24 * 3600 {
            anyhow::bail!(
                "binance_feed.connection_lifetime_secs must be between 1 and 86400 (Binance's 24-hour limit), got {}",
                self.binance_feed.connection_lifetime_secs
            );
        }
        if !(self.replay.speed >= 0.0 && self.replay.speed.is_finite()) {
            anyhow::bail!(
                "replay speed must be a non-negative number of candles per second, got {}",
                self.replay.speed
            );
        }
        if self.account_currency.len() != 3 || !self.account_currency.chars().all(|c| c.is_ascii_uppercase()) {
            anyhow::bail!("account currency must be a three-letter code such as USD, got {:?}", self.account_currency);
        }
        if self.monitor.sync_interval_ms == 0 {
            anyhow::bail!("monitor.sync_interval_ms must be at least 1");
        }
        if self.live.subscription_recheck_secs == 0 {
            anyhow::bail!("SIGNALPOST_SUBSCRIPTION_RECHECK_SECS must be at least 1");
        }
        if self.notification_ttl_minutes == Some(0) {
            anyhow::bail!("SIGNALPOST_NOTIFICATION_TTL_MINUTES must be at least 1");
        }
        if let Some(url) = &self.web.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            anyhow::bail!("SIGNALPOST_PUBLIC_URL must start with http:// or https://, got {url:?}");
        }
        if self.web.discord_client_id.is_some() != self.web.discord_client_secret.is_some() {
            anyhow::bail!("Discord sign-in needs both DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET (or neither)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let mut config = Config::default();
        config.discord.token = Some(Secret::new("very-secret-token"));
        config.database_url = Secret::new("postgres://u:hunter2@db/x");
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret-token") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNALPOST_BIND", "127.0.0.1:0");
            jail.set_env("DATABASE_URL", "sqlite://x.db");
            jail.set_env("SIGNALPOST_REPLAY_SPEED", "0");
            jail.set_env("SIGNALPOST_REPLAY_SERIES", "EURUSD:1h:a.csv, BTCUSD:1d:b.csv");
            jail.create_file("signalpost.toml", "bind = \"0.0.0.0:9\"\naccount_currency = \"EUR\"\n")?;
            let c = Config::load().unwrap();
            assert_eq!(c.bind, "127.0.0.1:0");
            assert_eq!(c.account_currency, "EUR");
            assert_eq!(c.database_url.expose(), "sqlite://x.db");
            assert_eq!(c.replay.speed, 0.0);
            assert_eq!(c.replay.series, vec!["EURUSD:1h:a.csv", "BTCUSD:1d:b.csv"]);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn the_notification_ttl_comes_from_the_environment_and_is_at_least_a_minute() {
        assert_eq!(Config::default().notification_ttl_minutes, None);
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNALPOST_NOTIFICATION_TTL_MINUTES", "240");
            assert_eq!(Config::load().unwrap().notification_ttl_minutes, Some(240));
            jail.set_env("SIGNALPOST_NOTIFICATION_TTL_MINUTES", "0");
            let refused = format!("{:#}", Config::load().unwrap_err());
            assert!(refused.contains("SIGNALPOST_NOTIFICATION_TTL_MINUTES"), "{refused}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn the_oanda_feed_is_configured_from_the_environment_and_needs_its_credentials() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNALPOST_FEED", "oanda");
            let refused = format!("{:#}", Config::load().unwrap_err());
            assert!(refused.contains("OANDA_TOKEN"), "{refused}");
            jail.set_env("OANDA_TOKEN", "secret-oanda-token");
            let refused = format!("{:#}", Config::load().unwrap_err());
            assert!(refused.contains("OANDA_ACCOUNT_ID"), "{refused}");
            jail.set_env("OANDA_ACCOUNT_ID", "101-004-1234567-001");
            jail.set_env("OANDA_API_URL", "https://api-fxtrade.oanda.com");
            jail.set_env("OANDA_STREAM_URL", "https://stream-fxtrade.oanda.com");
            jail.set_env("SIGNALPOST_OANDA_PAIRS", "EURUSD:1h, XAUUSD:15m");
            jail.set_env("SIGNALPOST_OANDA_PRICE", "ba");
            let c = Config::load().unwrap();
            assert_eq!(c.oanda_feed.token.as_ref().map(Secret::expose), Some("secret-oanda-token"));
            assert!(!format!("{c:?}").contains("secret-oanda-token"));
            assert_eq!(c.oanda_feed.account_id.as_deref(), Some("101-004-1234567-001"));
            assert_eq!(c.oanda_feed.api_url.as_deref(), Some("https://api-fxtrade.oanda.com"));
            assert_eq!(c.oanda_feed.stream_url.as_deref(), Some("https://stream-fxtrade.oanda.com"));
            assert_eq!(c.oanda_feed.pairs, vec!["EURUSD:1h", "XAUUSD:15m"]);
            assert_eq!(c.oanda_feed.price, "ba");
            jail.set_env("SIGNALPOST_OANDA_PRICE", "last");
            assert!(format!("{:#}", Config::load().unwrap_err()).contains("mid or ba"));
            Ok(())
        });
    }

    #[test]
    fn unimplemented_feeds_are_refused_plainly() {
        for feed in ["bloomberg", "polygon"] {
            let c = Config { feed: feed.into(), ..Config::default() };
            let refused = c.validate().unwrap_err().to_string();
            assert!(refused.contains(feed) && refused.contains("not available"), "{refused}");
        }
        Config { feed: "binance".into(), ..Config::default() }.validate().unwrap();
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn the_binance_feed_is_configured_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNALPOST_FEED", "binance");
            jail.set_env("BINANCE_STREAM_URL", "ws://127.0.0.1:9");
            jail.set_env("SIGNALPOST_BINANCE_MARKET", "futures");
            jail.set_env("SIGNALPOST_BINANCE_PAIRS", "BTCUSDT:1h, ETHUSDT:4h");
            let c = Config::load().unwrap();
            assert_eq!(c.feed, "binance");
            assert_eq!(c.binance_feed.stream_url.as_deref(), Some("ws://127.0.0.1:9"));
            assert_eq!(c.binance_feed.market, "futures");
            assert_eq!(c.binance_feed.pairs, vec!["BTCUSDT:1h", "ETHUSDT:4h"]);
            jail.set_env("SIGNALPOST_BINANCE_MARKET", "margin");
            assert!(format!("{:#}", Config::load().unwrap_err()).contains("spot or futures"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn the_twelvedata_feed_is_configured_from_the_environment_and_needs_a_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNALPOST_FEED", "twelvedata");
            let refused = format!("{:#}", Config::load().unwrap_err());
            assert!(refused.contains("TWELVEDATA_API_KEY"), "{refused}");
            jail.set_env("TWELVEDATA_API_KEY", "td-key-in-env");
            jail.set_env("TWELVEDATA_API_URL", "http://127.0.0.1:9");
            jail.set_env("SIGNALPOST_TWELVEDATA_CREDITS_PER_MINUTE", "55");
            jail.set_env("SIGNALPOST_TWELVEDATA_PAIRS", "EURUSD:1h, AAPL:15m");
            let c = Config::load().unwrap();
            assert_eq!(c.feed, "twelvedata");
            assert_eq!(c.twelvedata_feed.api_key.as_ref().map(Secret::expose), Some("td-key-in-env"));
            assert_eq!(c.twelvedata_feed.api_url.as_deref(), Some("http://127.0.0.1:9"));
            assert_eq!((c.twelvedata_feed.credits_per_minute, c.twelvedata_feed.credits_per_day), (55, 800));
            assert_eq!(c.twelvedata_feed.pairs, vec!["EURUSD:1h", "AAPL:15m"]);
            assert!(!format!("{c:?}").contains("td-key-in-env"));
            jail.set_env("SIGNALPOST_TWELVEDATA_CREDITS_PER_MINUTE", "0");
            assert!(format!("{:#}", Config::load().unwrap_err()).contains("CREDITS_PER_MINUTE"));
            Ok(())
        });
    }
}
