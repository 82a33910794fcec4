//! Fakes of Discord's REST API and of its gateway ([`gateway::FakeGateway`]) that speak Discord's wire
//! format, and a validator of JSON bodies against Discord's official OpenAPI description.
//!
//! [`FakeDiscord`] serves the routes Signalpost uses under `/api/v10` on `127.0.0.1:0`, with Discord's bot
//! token check, rate-limit headers, 429s (counted), error bodies, scripted failures and disconnects, and it
//! refuses (and records) every body that [`openapi::Spec`] says Discord would refuse.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use testkit::discord::{FakeDiscord, Route, ScriptedResponse};
//!
//! let fake = FakeDiscord::start().await;
//! // Point DISCORD_API_BASE (or twilight's proxy setting) at fake.base_url(), then:
//! fake.script_next(Route::CreateMessage, ScriptedResponse::Discord50007);
//! let sent = fake.wait_for_messages(1, Duration::from_secs(5)).await.unwrap();
//! assert!(fake.invalid_bodies().is_empty());
//! assert_eq!(fake.rate_limited_count(), 0);
//! # let _ = sent;
//! # }
//! ```

pub mod gateway;
pub mod interact;
/// Discord's OAuth2 endpoints, for the dashboard's "Sign in with Discord".
pub mod oauth;
mod objects;
pub mod openapi;
mod ratelimit;
mod rest;

pub use ratelimit::Limit;
pub use rest::{
    API_PREFIX, DEFAULT_APPLICATION_ID, FakeDiscord, FakeDiscordBuilder, InteractionCallback, InvalidBody,
    RecordedFile, RecordedRequest, Route, RouteMatcher, ScriptedResponse, SentMessage, WaitTimeout,
};
