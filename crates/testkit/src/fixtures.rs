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
