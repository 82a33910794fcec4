//! `DiscordNotifier` against testkit's fake Discord, which validates every body against Discord's OpenAPI
//! description, checks the bot token, applies Discord's rate limits (counting the 429s a client earns by
//! not honouring them) and answers scripted failures.

use discord::render::{self, SignalView};
use discord::{DeliveryError, DeliveryTarget, DiscordNotifier, Notifier, OutgoingMessage};
use domain::{InstrumentRegistry, Price, Side, Timeframe};
use rust_decimal_macros::dec;
use std::sync::Arc;
use std::time::Duration;
use testkit::discord::{FakeDiscord, Limit, Route, ScriptedResponse};

const TOKEN: &str = "MTEwMDAw.fake-secret-token";
const USER: &str = "1100000000000000042";
const CHANNEL: &str = "1000000000000000010";

async fn fake() -> FakeDiscord {
    FakeDiscord::builder().token(TOKEN).channel(CHANNEL).start().await
}

fn notifier(fake: &FakeDiscord) -> DiscordNotifier {
    DiscordNotifier::new(TOKEN.into(), Some(fake.base_url())).unwrap().with_rate_limit_pause(Duration::from_millis(200))
}

fn view(notification_id: i64) -> SignalView {
    SignalView {
        notification_id,
        title: render::ENGINE_TITLE.into(),
        instrument: InstrumentRegistry::global().get("XAUUSD").unwrap().clone(),
        timeframe: Some(Timeframe::H4),
        side: Side::Short,
        entry: Price::parse("2350.5").unwrap(),
        stop_loss: Price::parse("2362").unwrap(),
        take_profit: Price::parse("2320").unwrap(),
        confidence: Some(dec!(0.64)),
        model_version: Some("reversal-2026.03".into()),
    }
}

fn dm() -> DeliveryTarget {
    DeliveryTarget::Dm { discord_user_id: USER.into() }
}

fn channel() -> DeliveryTarget {
    DeliveryTarget::Channel { channel_id: CHANNEL.into() }
}

fn assert_clean(fake: &FakeDiscord) {
    assert!(fake.invalid_bodies().is_empty(), "Discord would refuse: {:#?}", fake.invalid_bodies());
    assert_eq!(fake.rate_limited_count(), 0, "429s earned by not honouring rate limits");
}

#[tokio::test]
async fn dm_and_channel_messages_are_valid_discord_requests() {
    let fake = fake().await;
    let notifier = notifier(&fake);
    let message = render::signal_message(&view(42));

    let dm_sent = notifier.send(&dm(), &message).await.unwrap();
    let channel_sent = notifier.send(&channel(), &message).await.unwrap();

    assert_eq!(Some(dm_sent.channel_id.clone()), fake.dm_channel_id(USER));
    assert_eq!(channel_sent.channel_id, CHANNEL);
    let sent = fake.messages_sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].recipient_id.as_deref(), Some(USER));
    assert_eq!(
        (sent[0].message_id.as_str(), sent[1].message_id.as_str()),
        (&*dm_sent.message_id, &*channel_sent.message_id)
    );
    for s in &sent {
        assert_eq!(s.body["embeds"], serde_json::to_value(&message.embeds).unwrap());
        assert_eq!(s.body["components"][0]["components"][0]["custom_id"], "open:42");
    }
    assert!(fake.requests().iter().all(|r| r.header("authorization") == Some(&format!("Bot {TOKEN}"))));
    assert_clean(&fake);
}

#[tokio::test]
async fn edits_commands_and_the_ignored_message_are_valid_too() {
    let fake = fake().await;
    let notifier = notifier(&fake);
    let view = view(7);
    let sent = notifier.send(&channel(), &render::signal_message(&view)).await.unwrap();
    notifier.edit_message(&sent.channel_id, &sent.message_id, &render::ignored_message(&view)).await.unwrap();
    let edited = fake.message(&sent.message_id).unwrap();
    assert_eq!(edited["components"][0]["components"][1]["disabled"], true);
    assert_eq!(edited["embeds"][0]["footer"]["text"], "Ignored");

    notifier.register_commands(fake.application_id(), &discord::commands::slash_commands()).await.unwrap();
    let names: Vec<String> = fake.commands().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["link", "settings", "trades", "history", "stats", "stop"]);
    assert_clean(&fake);
}

#[tokio::test]
async fn a_user_who_refuses_dms_is_a_permanent_refusal() {
    let fake = fake().await;
    let notifier = notifier(&fake);
    let message = render::signal_message(&view(1));

    fake.script_next(Route::CreateMessage, ScriptedResponse::Discord50007);
    let err = notifier.send(&dm(), &message).await.unwrap_err();
    assert_eq!(err, DeliveryError::Refused { code: 50007, message: "Cannot send messages to this user".into() });

    fake.refuse_dms("1100000000000000043");
    let err = notifier.send(&DeliveryTarget::Dm { discord_user_id: "1100000000000000043".into() }, &message).await;
    assert!(matches!(err, Err(DeliveryError::Refused { code: 50007, .. })), "{err:?}");

    let err = notifier.send(&DeliveryTarget::Channel { channel_id: "1000000000000000099".into() }, &message).await;
    assert!(matches!(err, Err(DeliveryError::Refused { code: 10003, .. })), "{err:?}");
    assert_clean(&fake);
}

#[tokio::test]
async fn scripted_429s_are_waited_out_without_earning_more() {
    let fake = fake().await;
    let notifier = notifier(&fake);
    let message = render::signal_message(&view(1));

    fake.script_next(Route::CreateMessage, ScriptedResponse::Status429 { retry_after: Duration::from_millis(500) });
    notifier.send(&channel(), &message).await.unwrap();
    fake.script_next(Route::CreateMessage, ScriptedResponse::Global429 { retry_after: Duration::from_millis(150) });
    notifier.send(&channel(), &message).await.unwrap();

    assert_eq!(fake.scripted_rate_limited_count(), 2);
    assert_eq!(fake.messages_sent().len(), 2);
    assert_clean(&fake);
}

#[tokio::test]
async fn a_burst_beyond_the_channel_limit_queues_instead_of_meeting_429s() {
    let fake = FakeDiscord::builder()
        .token(TOKEN)
        .channel(CHANNEL)
        .limit(Route::CreateMessage, Limit::new(3, Duration::from_millis(400)))
        .start()
        .await;
    let notifier = Arc::new(notifier(&fake));
    let mut tasks = tokio::task::JoinSet::new();
    for id in 1..=10 {
        let notifier = Arc::clone(&notifier);
        tasks.spawn(async move { notifier.send(&channel(), &render::signal_message(&view(id))).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(fake.messages_sent().len(), 10);
    assert_clean(&fake);
}

#[tokio::test]
async fn server_errors_disconnects_and_a_wrong_token_are_transient() {
    let fake = fake().await;
    let notifier = notifier(&fake);
    let message = OutgoingMessage { embeds: render::signal_message(&view(1)).embeds, components: Vec::new() };

    fake.script_next(Route::CreateMessage, ScriptedResponse::ServerError500);
    let err = notifier.send(&channel(), &message).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");

    fake.script_next(Route::CreateDm, ScriptedResponse::Disconnect);
    let err = notifier.send(&dm(), &message).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");
    notifier.send(&dm(), &message).await.unwrap();

    let wrong = DiscordNotifier::new("MTEwMDAw.wrong-token".into(), Some(fake.base_url())).unwrap();
    let err = wrong.send(&channel(), &message).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");
    assert!(!err.to_string().contains("wrong-token"), "{err}");
    assert_clean(&fake);
}
