//! What the base template (`templates/base.html`) needs from every page, and the headers every dashboard
//! response carries.

use crate::session::CurrentUser;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// One entry of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// The base layout's data. A page template holds one as its `layout` field and `{% extends "base.html" %}`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// Empty when nobody is signed in (the sign-in pages).
    pub nav: Vec<NavItem>,
    pub user_name: Option<String>,
    /// The session's CSRF token, for the sign-out form and the page's own forms.
    pub csrf_token: String,
    /// The market-data banner's lines (see [`crate::feed_status`]); empty on healthy feeds and before sign-in.
    pub alerts: Vec<String>,
}

const PAGES: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/signals", "Signals"),
    ("/trades", "Trades"),
    ("/stats", "Stats"),
    ("/settings", "Settings"),
    ("/providers", "Providers"),
    ("/following", "Following"),
];

impl Layout {
    /// The layout of a signed-in page; `active` is the nav entry to highlight (its href).
    pub fn for_user(user: &CurrentUser, title: &str, active: &str) -> Layout {
        let mut nav: Vec<NavItem> =
            PAGES.iter().map(|(href, label)| NavItem { href, label, active: *href == active }).collect();
        if user.is_admin() {
            nav.push(NavItem { href: "/admin", label: "Admin", active: active == "/admin" });
        }
        Layout {
            title: title.to_string(),
            nav,
            user_name: Some(user.user.display_name.clone()),
            csrf_token: user.csrf_token().to_string(),
            alerts: user.feed_alerts.clone(),
        }
    }

    /// The layout of a page shown before sign-in.
    pub fn anonymous(title: &str, csrf_token: &str) -> Layout {
        Layout {
            title: title.to_string(),
            nav: Vec::new(),
            user_name: None,
            csrf_token: csrf_token.to_string(),
            alerts: Vec::new(),
        }
    }
}

/// Headers that keep dashboard pages out of frames, stop MIME sniffing, keep sign-in tokens in URLs from
/// leaking through `Referer`, allow scripts and styles only from this origin, and keep pages with personal
/// data out of shared caches.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    if !is_static {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}
