//! `/providers`: every registered provider channel with its latest messages as first received, what each
//! became (a signal, a refusal and why, noise, an update not applied yet), and every edit (with its hash)
//! and deletion, so what a provider rewrote or removed stays visible. TradingView deliveries are listed
//! under their pseudo-channel. Any signed-in user may look; an admin also gets a form to register a channel
//! (`POST /providers`, the same as `signalpost providers add`).

use crate::WebState;
use crate::error::AppError;
use crate::layout::Layout;
use crate::session::{AdminUser, CurrentUser};
use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::response::{Html, Redirect};
use axum::routing::get;
use store::{ProviderMessage, WEBHOOK_CHANNEL};

/// How many messages per channel the page shows.
const PER_CHANNEL: u32 = 50;

pub fn routes() -> Router<WebState> {
    Router::new().route("/providers", get(providers).post(register))
}

#[derive(Debug)]
struct RevisionRow {
    at: String,
    hash: String,
    content: String,
}

#[derive(Debug)]
struct MessageRow {
    message_id: String,
    author: String,
    received: String,
    hash: String,
    content: String,
    kind: &'static str,
    outcome: String,
    deleted: Option<String>,
    revisions: Vec<RevisionRow>,
}

#[derive(Debug)]
struct ChannelSection {
    channel_id: String,
    name: String,
    state: &'static str,
    messages: Vec<MessageRow>,
}

#[derive(Template)]
#[template(path = "providers.html")]
struct ProvidersPage {
    layout: Layout,
    channels: Vec<ChannelSection>,
    is_admin: bool,
}

#[derive(Debug, serde::Deserialize)]
struct RegisterForm {
    channel_id: String,
    name: String,
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn row(m: ProviderMessage) -> MessageRow {
    MessageRow {
        message_id: m.message_id,
        author: m.author.unwrap_or_else(|| "—".into()),
        received: time(m.received_at),
        hash: m.hash,
        content: m.content,
        kind: m.kind.as_str(),
        outcome: m.outcome,
        deleted: m.deleted_at.map(time),
        revisions: m
            .revisions
            .into_iter()
            .map(|r| RevisionRow { at: time(r.at), hash: r.hash, content: r.content })
            .collect(),
    }
}

async fn providers(State(state): State<WebState>, me: CurrentUser) -> Result<Html<String>, AppError> {
    let mut channels = Vec::new();
    for c in state.store.provider_channels().await? {
        let messages = state.store.provider_messages(&c.channel_id, PER_CHANNEL).await?;
        channels.push(ChannelSection {
            state: if c.enabled { "enabled" } else { "disabled" },
            messages: messages.into_iter().map(row).collect(),
            channel_id: c.channel_id,
            name: c.name,
        });
    }
    let webhook = state.store.provider_messages(WEBHOOK_CHANNEL, PER_CHANNEL).await?;
    if !webhook.is_empty() {
        channels.push(ChannelSection {
            channel_id: WEBHOOK_CHANNEL.into(),
            name: "TradingView webhook".into(),
            state: if state.config.tradingview_secret.is_some() { "enabled" } else { "disabled" },
            messages: webhook.into_iter().map(row).collect(),
        });
    }
    let page =
        ProvidersPage { layout: Layout::for_user(&me, "Providers", "/providers"), channels, is_admin: me.is_admin() };
    Ok(Html(page.render()?))
}

async fn register(
    State(state): State<WebState>,
    AdminUser(me): AdminUser,
    Form(form): Form<RegisterForm>,
) -> Result<Redirect, AppError> {
    let channel_id = form.channel_id.trim();
    if channel_id.is_empty() || !channel_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::BadRequest("A Discord channel id is a number (copy it from Discord).".into()));
    }
    if form.name.trim().is_empty() {
        return Err(AppError::BadRequest("Give the provider a name.".into()));
    }
    match state.store.add_provider_channel(channel_id, &form.name, &me.user.display_name, state.clock.now()).await {
        Ok(_) => Ok(Redirect::to("/providers")),
        Err(store::StoreError::Conflict { .. }) => {
            Err(AppError::BadRequest(format!("Channel {channel_id} is registered already.")))
        }
        Err(store::StoreError::Invalid(e)) => Err(AppError::BadRequest(e.to_string())),
        Err(e) => Err(e.into()),
    }
}
