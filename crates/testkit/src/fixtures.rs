//! Data and users the black-box tests share: the bundled EURUSD hours that make the replay produce engine
//! signals, and a Discord user subscribed to exactly what those signals are.

use std::path::PathBuf;
use std::sync::Arc;
use store::Store;

/// The first 300 EURUSD H1 bars of the LEAN/OANDA sample the market crate's tests carry (see its data
/// README for source and licence): enough for the engine to warm up and signal a few dozen times.
pub fn eurusd_300_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../market/tests/data/lean_oanda_EURUSD_H1_head300.csv.gz")
}

/// [`eurusd_300_path`] as a replay series for `AppOptions::replay_series`.
pub fn eurusd_300_series() -> String {
    format!("EURUSD:1h:{}", eurusd_300_path().display())
}

/// A Discord user who gets every EURUSD 1h signal: no confidence floor, no cooldown, a cap out of reach.
pub async fn eurusd_subscriber(store: &Arc<dyn Store>, discord_id: &str, name: &str) -> domain::UserId {
    let user = store.ensure_discord_user(discord_id, name).await.unwrap();
    let settings = domain::UserSettings {
        enabled_timeframes: vec![domain::Timeframe::H1],
        preferred_pairs: vec![domain::Symbol::normalize("EURUSD")],
        min_confidence: rust_decimal::Decimal::ZERO,
        notification_cooldown_minutes: 0,
        max_notifications_per_day: 1000,
        ..domain::UserSettings::default()
    };
    store.save_settings(user.id, &settings).await.unwrap();
    user.id
}

/// When [`eurusd_wave`] starts: a Monday, so every candle falls in the trading week.
pub fn wave_start() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap()
}

/// `n` EURUSD hourly candles from [`wave_start`], a gentle wave so every indicator has something to say.
pub fn eurusd_wave(n: i64) -> Vec<domain::Candle> {
    use rust_decimal::Decimal;
    let pips = |n: i64| Decimal::new(n, 4);
    (0..n)
        .map(|i| {
            let phase = (i as f64 / 6.0).sin();
            let open = Decimal::new(10850, 4) + Decimal::try_from(phase * 0.0030).unwrap().round_dp(5);
            let close = open + if i % 3 == 0 { pips(-4) } else { pips(5) };
            domain::Candle {
                time: wave_start() + chrono::Duration::hours(i),
                open,
                high: open.max(close) + pips(3),
                low: open.min(close) - pips(3),
                close,
                volume: Decimal::from(100),
            }
        })
        .collect()
}

/// A long engine signal on `symbol` 1h at the close of the candle that opened at `candle_open` (entry
/// 1.08520, SL 1.08300, TP 1.08960, confidence 0.4123, model `reversal-test-1`), and a notification of it for
/// `user`; returns the notification's id.
pub async fn notified_signal(
    store: &Arc<dyn Store>,
    user: domain::UserId,
    symbol: &str,
    candle_open: chrono::DateTime<chrono::Utc>,
) -> i64 {
    use domain::{Entry, Price, Side, Signal, SignalSource, Symbol, Timeframe};
    let p = |t: &str| Price::parse(t).unwrap();
    let signal = Signal {
        symbol: Symbol::normalize(symbol),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.08520") },
        stop_loss: Some(p("1.08300")),
        take_profits: vec![p("1.08960")],
        leverage: None,
        confidence: Some(rust_decimal::Decimal::new(4123, 4)),
        source: SignalSource::Engine,
        model_version: Some("reversal-test-1".into()),
        stage1_prob: Some(0.61),
        stage2_prob: Some(0.4123),
        created_at: candle_open + chrono::Duration::hours(1),
    };
    let (signal_id, _) = store.insert_signal(&signal, None).await.unwrap();
    let new = store::NewNotification {
        signal_id,
        user_id: user,
        symbol: Symbol::normalize(symbol),
        created_at: chrono::Utc::now(),
    };
    store.create_notification(&new).await.unwrap().unwrap().0
}
