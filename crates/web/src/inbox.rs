//! `/signals`: the signed-in user's notifications, newest first, with Discord's actions: Open Trade (a form
//! pre-filled like Discord's modal and checked field by field on the server), Ignore, and Details (the
//! signal's probabilities and model). Opening and ignoring go through [`store::actions`], the same code the
//! Discord buttons use.

use crate::WebState;
use crate::error::AppError;
use crate::layout::Layout;
use crate::session::CurrentUser;
use crate::trades::{capitalise, refused};
use crate::views::{or_dash, when};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::{Entry, Lots, NotificationId, Price, Signal, TradeError};
use serde::{Deserialize, Serialize};
use store::actions::{self, ActionError, TradeForm};
use store::{Notification, StoredSignal};

/// Notifications per inbox page.
pub const INBOX_PAGE: u32 = 20;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/signals", get(inbox))
        .route("/signals/{id}", get(details))
        .route("/signals/{id}/open", post(open))
        .route("/signals/{id}/ignore", post(ignore))
}

/// A notification with its signal, as the inbox and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct InboxItem {
    pub id: NotificationId,
    pub symbol: String,
    pub side: &'static str,
    pub timeframe: Option<&'static str>,
    pub entry: String,
    pub stop_loss: Option<String>,
    pub take_profits: Vec<String>,
    /// 0 to 1.
    pub confidence: Option<rust_decimal::Decimal>,
    pub stage1_prob: Option<f64>,
    pub stage2_prob: Option<f64>,
    pub model_version: Option<String>,
    pub source: String,
    pub status: &'static str,
    pub acknowledged: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub created: String,
}

fn entry_text(signal: &Signal) -> String {
    match signal.entry {
        Entry::Market => "market".into(),
        Entry::Price { price } => price.to_string(),
        Entry::Zone { low, high } => format!("{low} – {high}"),
    }
}

fn probability(p: Option<f64>) -> String {
    or_dash(p.map(|p| format!("{:.1}%", p * 100.0)))
}

impl InboxItem {
    pub fn of(notification: &Notification, stored: &StoredSignal) -> InboxItem {
        let s = &stored.signal;
        InboxItem {
            id: notification.id,
            symbol: s.symbol.as_str().to_string(),
            side: s.side.as_str(),
            timeframe: s.timeframe.map(|t| t.as_str()),
            entry: entry_text(s),
            stop_loss: s.stop_loss.map(|p| p.to_string()),
            take_profits: s.take_profits.iter().map(ToString::to_string).collect(),
            confidence: s.confidence,
            stage1_prob: s.stage1_prob,
            stage2_prob: s.stage2_prob,
            model_version: s.model_version.clone(),
            source: s.source.to_text(),
            status: notification.status.as_str(),
            acknowledged: notification.acknowledged,
            created_at: notification.created_at,
            created: when(notification.created_at),
        }
    }

    pub fn confidence_text(&self) -> String {
        or_dash(self.confidence.map(|c| format!("{}%", (c * rust_decimal::Decimal::ONE_HUNDRED).round_dp(1))))
    }

    pub fn stage1_text(&self) -> String {
        probability(self.stage1_prob)
    }

    pub fn stage2_text(&self) -> String {
        probability(self.stage2_prob)
    }
}

/// A page of the user's inbox, newest first, with whether another page follows.
pub async fn inbox_items(state: &WebState, user: &CurrentUser, page: u32) -> Result<(Vec<InboxItem>, bool), AppError> {
    let offset = page.saturating_sub(1).saturating_mul(INBOX_PAGE);
    let mut notifications = state.store.notifications_for_user(user.id(), INBOX_PAGE + 1, offset).await?;
    let more = notifications.len() > INBOX_PAGE as usize;
    notifications.truncate(INBOX_PAGE as usize);
    let mut items = Vec::with_capacity(notifications.len());
    for n in &notifications {
        match state.store.get_signal(n.signal_id).await? {
            Some(signal) => items.push(InboxItem::of(n, &signal)),
            None => tracing::warn!(notification = %n.id, "a notification's signal is missing; not listed"),
        }
    }
    Ok((items, more))
}

#[derive(Template)]
#[template(path = "signals.html")]
struct InboxPage {
    layout: Layout,
    items: Vec<InboxItem>,
    page: u32,
    more: bool,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    page: Option<u32>,
    ignored: Option<i64>,
}

async fn inbox(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(query): Query<InboxQuery>,
) -> Result<Html<String>, AppError> {
    let page = query.page.unwrap_or(1).max(1);
    let (items, more) = inbox_items(&state, &user, page).await?;
    Ok(Html(
        InboxPage {
            layout: Layout::for_user(&user, "Signals", "/signals"),
            items,
            page,
            more,
            message: query.ignored.map(|id| format!("Signal #{id} ignored.")),
        }
        .render()?,
    ))
}

/// The Open Trade form's values as typed, and a message per field.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    pub entry: String,
    #[serde(default)]
    pub lots: String,
    #[serde(default)]
    pub stop_loss: String,
    #[serde(default)]
    pub take_profit: String,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Default)]
pub struct OpenErrors {
    pub entry: Option<String>,
    pub lots: Option<String>,
    pub stop_loss: Option<String>,
    pub take_profit: Option<String>,
    pub notes: Option<String>,
    /// A problem with the trade as a whole.
    pub form: Option<String>,
}

impl OpenErrors {
    fn any(&self) -> bool {
        self.entry.is_some()
            || self.lots.is_some()
            || self.stop_loss.is_some()
            || self.take_profit.is_some()
            || self.notes.is_some()
            || self.form.is_some()
    }
}

/// Checks each field on its own, so every bad one gets its own message.
pub fn check_fields(form: &OpenForm) -> OpenErrors {
    let mut errors = OpenErrors::default();
    if Price::parse(form.entry.trim()).is_err() {
        errors.entry = Some("Entry must be a price above zero, such as 1.0850.".into());
    }
    if Lots::parse(form.lots.trim()).is_err() {
        errors.lots = Some("Lots must be a size above zero, such as 0.10.".into());
    }
    for (value, slot, name) in [
        (&form.stop_loss, &mut errors.stop_loss, "Stop loss"),
        (&form.take_profit, &mut errors.take_profit, "Take profit"),
    ] {
        if !value.trim().is_empty() && Price::parse(value.trim()).is_err() {
            *slot = Some(format!("{name} must be a price above zero, or empty for none."));
        }
    }
    if form.notes.chars().count() > actions::MAX_NOTES_CHARS {
        errors.notes = Some(format!("Notes are at most {} characters.", actions::MAX_NOTES_CHARS));
    }
    errors
}

/// Puts a rule the trade as a whole broke beside the field it concerns.
fn place(error: TradeError, form: &OpenForm, errors: &mut OpenErrors) {
    let message = capitalise(&format!("{error}."));
    let is = |field: &str, price: Price| Price::parse(field.trim()).ok() == Some(price);
    match error {
        TradeError::StopLossWrongSide { .. } => errors.stop_loss = Some(message),
        TradeError::TakeProfitWrongSide { .. } => errors.take_profit = Some(message),
        TradeError::TooPrecise { price, .. } if is(&form.entry, price) => errors.entry = Some(message),
        TradeError::TooPrecise { price, .. } if is(&form.stop_loss, price) => errors.stop_loss = Some(message),
        TradeError::TooPrecise { price, .. } if is(&form.take_profit, price) => errors.take_profit = Some(message),
        _ => errors.form = Some(message),
    }
}

#[derive(Template)]
#[template(path = "signal.html")]
struct DetailsPage {
    layout: Layout,
    item: InboxItem,
    values: OpenForm,
    errors: OpenErrors,
}

async fn details_page(
    state: &WebState,
    user: &CurrentUser,
    id: NotificationId,
    values: Option<OpenForm>,
    errors: OpenErrors,
) -> Result<DetailsPage, AppError> {
    let (notification, signal) =
        actions::own_notification(state.store.as_ref(), user.id(), id).await.map_err(refused)?;
    let values = match values {
        Some(values) => values,
        None => {
            let defaults = actions::trade_defaults(state.store.as_ref(), &user.user, &signal).await.map_err(refused)?;
            OpenForm {
                entry: defaults.entry.map(|p| p.to_string()).unwrap_or_default(),
                lots: defaults.lots.to_string(),
                stop_loss: defaults.stop_loss.map(|p| p.to_string()).unwrap_or_default(),
                take_profit: defaults.take_profit.map(|p| p.to_string()).unwrap_or_default(),
                notes: String::new(),
            }
        }
    };
    Ok(DetailsPage {
        layout: Layout::for_user(user, "Signal", "/signals"),
        item: InboxItem::of(&notification, &signal),
        values,
        errors,
    })
}

async fn details(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, AppError> {
    let page = details_page(&state, &user, NotificationId(id), None, OpenErrors::default()).await?;
    Ok(Html(page.render()?))
}

/// `POST /signals/{id}/open`: opens the trade, or shows the form again with a message beside each bad field
/// and nothing stored.
async fn open(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<OpenForm>,
) -> Result<Response, AppError> {
    let id = NotificationId(id);
    let mut errors = check_fields(&form);
    if !errors.any() {
        let typed = TradeForm {
            entry: form.entry.trim(),
            lots: form.lots.trim(),
            stop_loss: form.stop_loss.trim(),
            take_profit: form.take_profit.trim(),
            notes: &form.notes,
        };
        match actions::open_from_notification(state.store.as_ref(), user.id(), id, &typed, state.clock.now()).await {
            Ok(opened) => {
                if opened.created {
                    state.announce(bus::Event::TradeOpened { trade: opened.trade.clone() }).await;
                }
                return Ok(Redirect::to(&format!("/trades?opened={}", opened.trade.id)).into_response());
            }
            Err(ActionError::Invalid(error)) => place(error, &form, &mut errors),
            Err(other) => return Err(refused(other)),
        }
    }
    let page = details_page(&state, &user, id, Some(form), errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
}

/// `POST /signals/{id}/ignore`: acknowledges the notification.
async fn ignore(State(state): State<WebState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, AppError> {
    actions::ignore_notification(state.store.as_ref(), user.id(), NotificationId(id)).await.map_err(refused)?;
    Ok(Redirect::to(&format!("/signals?ignored={id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let form = OpenForm {
            entry: "abc".into(),
            lots: "-1".into(),
            stop_loss: "x".into(),
            take_profit: "".into(),
            notes: "n".repeat(1001),
        };
        let errors = check_fields(&form);
        assert!(errors.entry.is_some() && errors.lots.is_some() && errors.stop_loss.is_some());
        assert!(errors.take_profit.is_none(), "an empty take profit means none");
        assert!(errors.notes.is_some());
    }
}
