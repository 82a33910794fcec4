//! `/settings`: every field of the signed-in user's notification settings, validated here (each message
//! shown beside its field, with what was typed, and nothing stored until every field is valid), the
//! delivery choice, and the Discord link status with a button that makes a fresh `/link` code.
//!
//! Accounts with a local password also change it here: the current password, the new one twice. A change
//! keeps the session it was made from and signs every other session of the user out, so a password changed
//! because it leaked also throws out whoever used it.

use crate::error::AppError;
use crate::layout::Layout;
use crate::session::CurrentUser;
use crate::{WebState, link_code, password};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use domain::{Delivery, InstrumentRegistry, Symbol, Timeframe, UserSettings};
use rust_decimal::Decimal;
use serde::Deserialize;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/settings", get(show).post(save))
        .route("/settings/link-code", post(new_link_code))
        .route("/settings/password", post(change_password))
}

/// A checkbox or option and whether it is ticked.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    checked: bool,
}

/// The form's values as text, so a rejected submission comes back exactly as typed.
#[derive(Debug, Clone, Default)]
struct Values {
    notifications_enabled: bool,
    timeframes: Vec<String>,
    pairs: Vec<String>,
    /// Percent, 0 to 100.
    min_confidence: String,
    only_ml_enhanced: bool,
    max_notifications_per_day: String,
    notification_cooldown_minutes: String,
    running_update_minutes: String,
    /// `dm` or `channel`.
    delivery: String,
    channel_id: String,
}

impl Values {
    fn of(settings: &UserSettings) -> Values {
        let (delivery, channel_id) = match &settings.delivery {
            Delivery::Dm => ("dm", String::new()),
            Delivery::Channel(id) => ("channel", id.clone()),
        };
        Values {
            notifications_enabled: settings.notifications_enabled,
            timeframes: settings.enabled_timeframes.iter().map(|t| t.as_str().to_string()).collect(),
            pairs: settings.preferred_pairs.iter().map(|s| s.as_str().to_string()).collect(),
            min_confidence: (settings.min_confidence * Decimal::ONE_HUNDRED).normalize().to_string(),
            only_ml_enhanced: settings.only_ml_enhanced,
            max_notifications_per_day: settings.max_notifications_per_day.to_string(),
            notification_cooldown_minutes: settings.notification_cooldown_minutes.to_string(),
            running_update_minutes: settings.running_update_minutes.to_string(),
            delivery: delivery.into(),
            channel_id,
        }
    }

    fn from_form(pairs: Vec<(String, String)>) -> Values {
        let mut values = Values { delivery: "dm".into(), ..Values::default() };
        for (name, value) in pairs {
            match name.as_str() {
                "notifications_enabled" => values.notifications_enabled = true,
                "only_ml_enhanced" => values.only_ml_enhanced = true,
                "timeframes" => values.timeframes.push(value),
                "pairs" => values.pairs.push(value),
                "min_confidence" => values.min_confidence = value.trim().to_string(),
                "max_notifications_per_day" => values.max_notifications_per_day = value.trim().to_string(),
                "notification_cooldown_minutes" => values.notification_cooldown_minutes = value.trim().to_string(),
                "running_update_minutes" => values.running_update_minutes = value.trim().to_string(),
                "delivery" => values.delivery = value,
                "channel_id" => values.channel_id = value.trim().to_string(),
                _ => {}
            }
        }
        values
    }
}

/// A message beside each field that was wrong.
#[derive(Debug, Clone, Default)]
struct FieldErrors {
    timeframes: Option<String>,
    pairs: Option<String>,
    min_confidence: Option<String>,
    max_notifications_per_day: Option<String>,
    notification_cooldown_minutes: Option<String>,
    running_update_minutes: Option<String>,
    delivery: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        [
            &self.timeframes,
            &self.pairs,
            &self.min_confidence,
            &self.max_notifications_per_day,
            &self.notification_cooldown_minutes,
            &self.running_update_minutes,
            &self.delivery,
        ]
        .iter()
        .any(|e| e.is_some())
    }
}

fn whole_number(text: &str, max: u32, what: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(format!("{what} is at most {max}.")),
        Err(_) if text.is_empty() => Err(format!("Give {what}, a whole number from 0 to {max}.")),
        Err(_) => Err(format!("{what} must be a whole number from 0 to {max}; {text:?} is not.")),
    }
}

/// Checks every field and builds the settings, starting from `current` so any field this form does not
/// show keeps its value. All the errors come back at once.
fn validate(values: &Values, current: &UserSettings) -> Result<UserSettings, Box<FieldErrors>> {
    let mut errors = FieldErrors::default();
    let mut settings = current.clone();
    settings.notifications_enabled = values.notifications_enabled;
    settings.only_ml_enhanced = values.only_ml_enhanced;

    let mut timeframes = Vec::new();
    for text in &values.timeframes {
        match Timeframe::parse(text) {
            Ok(tf) if !timeframes.contains(&tf) => timeframes.push(tf),
            Ok(_) => {}
            Err(_) => errors.timeframes = Some(format!("{text:?} is not a timeframe.")),
        }
    }
    // Keep the canonical order whatever order the browser sent.
    timeframes.sort_by_key(|tf| Timeframe::ALL.iter().position(|t| t == tf));
    settings.enabled_timeframes = timeframes;

    let registry = InstrumentRegistry::global();
    let mut pairs: Vec<Symbol> = Vec::new();
    for text in &values.pairs {
        match registry.get(text) {
            Ok(instrument) if !pairs.contains(&instrument.symbol) => pairs.push(instrument.symbol.clone()),
            Ok(_) => {}
            Err(_) => errors.pairs = Some(format!("{text:?} is not an instrument Signalpost knows.")),
        }
    }
    settings.preferred_pairs = pairs;

    match values.min_confidence.parse::<Decimal>() {
        Ok(percent) if percent >= Decimal::ZERO && percent <= Decimal::ONE_HUNDRED && percent.scale() <= 2 => {
            settings.min_confidence = (percent / Decimal::ONE_HUNDRED).normalize();
        }
        _ => errors.min_confidence = Some("The minimum confidence is a percentage from 0 to 100.".into()),
    }
    match whole_number(&values.max_notifications_per_day, 1000, "The daily cap") {
        Ok(n) => settings.max_notifications_per_day = n,
        Err(e) => errors.max_notifications_per_day = Some(e),
    }
    match whole_number(&values.notification_cooldown_minutes, 10_080, "The cooldown") {
        Ok(n) => settings.notification_cooldown_minutes = n,
        Err(e) => errors.notification_cooldown_minutes = Some(e),
    }
    let range = domain::settings::RUNNING_UPDATE_MINUTES;
    match values.running_update_minutes.parse::<u32>() {
        Ok(n) if n == 0 || range.contains(&n) => settings.running_update_minutes = n,
        _ => {
            errors.running_update_minutes =
                Some(format!("Running updates are 0 (off) or every {} to {} minutes.", range.start(), range.end()))
        }
    }
    match values.delivery.as_str() {
        "dm" => settings.delivery = Delivery::Dm,
        "channel" if !values.channel_id.is_empty() && values.channel_id.bytes().all(|b| b.is_ascii_digit()) => {
            settings.delivery = Delivery::Channel(values.channel_id.clone());
        }
        "channel" => {
            errors.delivery =
                Some("A channel id is the channel's Discord id: digits only (Copy Channel ID in Discord).".into())
        }
        _ => errors.delivery = Some("Choose a direct message or a channel.".into()),
    }
    // The domain's own rules have the last word; the checks above only make its messages friendlier.
    if !errors.any()
        && let Err(error) = settings.validate()
    {
        errors.delivery = Some(error.to_string());
    }
    if errors.any() { Err(Box::new(errors)) } else { Ok(settings) }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    values: Values,
    errors: FieldErrors,
    timeframes: Vec<Choice>,
    pairs: Vec<Choice>,
    saved: bool,
    discord_user_id: Option<String>,
    link_code: Option<String>,
    link_code_expires: String,
    /// Whether the account has a local password, so the password form applies.
    has_password: bool,
    password_errors: PasswordErrors,
    /// Set after a change: how many other sessions it signed out.
    password_changed: Option<u64>,
}

impl SettingsPage {
    fn min_password_length(&self) -> usize {
        password::MIN_LENGTH
    }
}

/// A message beside each field of the password form that was wrong. Passwords are never echoed back.
#[derive(Debug, Clone, Default)]
struct PasswordErrors {
    current_password: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
}

impl PasswordErrors {
    fn any(&self) -> bool {
        self.current_password.is_some() || self.new_password.is_some() || self.confirm_password.is_some()
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordForm { .. }")
    }
}

fn page(user: &CurrentUser, values: Values, errors: FieldErrors, saved: bool, has_password: bool) -> SettingsPage {
    let timeframes = Timeframe::ALL
        .iter()
        .map(|tf| Choice { value: tf.as_str().into(), checked: values.timeframes.iter().any(|t| t == tf.as_str()) })
        .collect();
    let pairs = InstrumentRegistry::global()
        .all()
        .iter()
        .map(|i| Choice {
            value: i.symbol.as_str().into(),
            checked: values.pairs.iter().any(|p| p.eq_ignore_ascii_case(i.symbol.as_str())),
        })
        .collect();
    SettingsPage {
        layout: Layout::for_user(user, "Settings", "/settings"),
        values,
        errors,
        timeframes,
        pairs,
        saved,
        discord_user_id: user.user.discord_user_id.clone(),
        link_code: None,
        link_code_expires: String::new(),
        has_password,
        password_errors: PasswordErrors::default(),
        password_changed: None,
    }
}

/// The user's stored password hash, when they sign in with a local password.
async fn password_hash(state: &WebState, user: &CurrentUser) -> Result<Option<String>, AppError> {
    Ok(state.store.local_credentials(user.id()).await?.and_then(|c| c.password_hash))
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    saved: Option<String>,
    /// Other sessions a password change just signed out.
    password_changed: Option<u64>,
}

async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(query): Query<ShowQuery>,
) -> Result<Html<String>, AppError> {
    let settings = state.store.get_settings(user.id()).await?;
    let has_password = password_hash(&state, &user).await?.is_some();
    let mut page = page(&user, Values::of(&settings), FieldErrors::default(), query.saved.is_some(), has_password);
    page.password_changed = query.password_changed;
    Ok(Html(page.render()?))
}

async fn save(
    State(state): State<WebState>,
    user: CurrentUser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let values = Values::from_form(form);
    let current = state.store.get_settings(user.id()).await?;
    match validate(&values, &current) {
        Ok(settings) => {
            state.store.save_settings(user.id(), &settings).await?;
            // The live feeds re-derive their pairs from the store on this.
            state.announce(bus::Event::SettingsChanged { user_id: user.id() }).await;
            Ok(Redirect::to("/settings?saved=1").into_response())
        }
        Err(errors) => {
            let has_password = password_hash(&state, &user).await?.is_some();
            let html = page(&user, values, *errors, false, has_password).render()?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response())
        }
    }
}

/// Makes a fresh `/link` code (replacing older ones) and shows it once: only its hash is stored.
async fn new_link_code(State(state): State<WebState>, user: CurrentUser) -> Result<Response, AppError> {
    let expires_at: DateTime<Utc> = state.clock.now() + chrono::Duration::minutes(link_code::TTL_MINUTES);
    let mut attempts = 0;
    // Two users holding the same code is astronomically unlikely; a collision just draws again.
    let code = loop {
        let code = link_code::new_code()?;
        match state.store.create_link_code(user.id(), &link_code::hash(&code), expires_at).await {
            Ok(()) => break code,
            Err(store::StoreError::Conflict { .. }) if attempts < 3 => attempts += 1,
            Err(error) => return Err(error.into()),
        }
    };
    let settings = state.store.get_settings(user.id()).await?;
    let has_password = password_hash(&state, &user).await?.is_some();
    let mut page = page(&user, Values::of(&settings), FieldErrors::default(), false, has_password);
    page.link_code = Some(code);
    page.link_code_expires = expires_at.format("%H:%M UTC").to_string();
    Ok(Html(page.render()?).into_response())
}

/// `POST /settings/password`: checks the current password and the new one (length rules, typed twice the
/// same), then stores the new hash and signs out the user's other sessions; any wrong field is shown beside
/// it with nothing changed.
async fn change_password(
    State(state): State<WebState>,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let Some(stored) = password_hash(&state, &user).await? else {
        return Err(AppError::BadRequest(
            "This account has no local password to change: it signs in with Discord or a one-time link. An admin \
             can set one with `signalpost users set-password`."
                .into(),
        ));
    };
    let mut errors = PasswordErrors::default();
    if let Err(error) = password::check_rules(&form.new_password) {
        errors.new_password = Some(capitalise(&format!("{error}.")));
    }
    if form.confirm_password != form.new_password {
        errors.confirm_password = Some("The two new passwords are not the same.".into());
    }
    // Checked even when another field is wrong, so one answer lists every problem.
    if !password::verify(form.current_password, Some(stored.clone())).await {
        errors.current_password = Some("That is not your current password.".into());
    }
    if !errors.any() {
        let hash = password::hash(form.new_password).await.map_err(|e| AppError::Internal(e.to_string()))?;
        let now = state.clock.now();
        match state.store.change_local_password(user.id(), &stored, &hash, &user.session.id_hash, now).await? {
            Some(ended) => {
                tracing::info!(user = %user.id(), other_sessions_ended = ended, "password changed on the dashboard");
                return Ok(Redirect::to(&format!("/settings?password_changed={ended}")).into_response());
            }
            None => {
                errors.current_password =
                    Some("Your password was changed elsewhere a moment ago; nothing was changed here.".into())
            }
        }
    }
    let settings = state.store.get_settings(user.id()).await?;
    let mut page = page(&user, Values::of(&settings), FieldErrors::default(), false, true);
    page.password_errors = errors;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Values {
        Values::from_form(pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
    }

    #[test]
    fn a_valid_form_becomes_settings() {
        let values = form(&[
            ("notifications_enabled", "on"),
            ("timeframes", "4h"),
            ("timeframes", "1h"),
            ("pairs", "eurusd"),
            ("min_confidence", "42.5"),
            ("max_notifications_per_day", "7"),
            ("notification_cooldown_minutes", "30"),
            ("running_update_minutes", "15"),
            ("delivery", "channel"),
            ("channel_id", "123456789012345678"),
        ]);
        let settings = validate(&values, &UserSettings::default()).unwrap();
        assert_eq!(settings.enabled_timeframes, vec![Timeframe::H1, Timeframe::H4]);
        assert_eq!(settings.preferred_pairs, vec![Symbol::normalize("EURUSD")]);
        assert_eq!(settings.min_confidence, Decimal::new(425, 3));
        assert_eq!(settings.delivery, Delivery::Channel("123456789012345678".into()));
        assert!(!settings.only_ml_enhanced);
        assert_eq!(Values::of(&settings).min_confidence, "42.5");
    }

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let values = form(&[
            ("timeframes", "2h"),
            ("pairs", "NOPE"),
            ("min_confidence", "150"),
            ("max_notifications_per_day", "-1"),
            ("notification_cooldown_minutes", "99999"),
            ("running_update_minutes", "3"),
            ("delivery", "channel"),
            ("channel_id", "general"),
        ]);
        let errors = validate(&values, &UserSettings::default()).unwrap_err();
        for (field, message) in [
            ("timeframes", &errors.timeframes),
            ("pairs", &errors.pairs),
            ("min_confidence", &errors.min_confidence),
            ("max_notifications_per_day", &errors.max_notifications_per_day),
            ("notification_cooldown_minutes", &errors.notification_cooldown_minutes),
            ("running_update_minutes", &errors.running_update_minutes),
            ("delivery", &errors.delivery),
        ] {
            assert!(message.is_some(), "{field} has no message");
        }
    }
}
