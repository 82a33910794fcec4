//! Helpers for the dashboard's black-box tests: a browser-like HTTP client that keeps the session cookie
//! and does not follow redirects (so tests see each 303), and accounts with passwords.

#![allow(dead_code)] // Each test file uses its own subset.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use std::sync::Arc;
use store::{NewUser, Role, Store, User};

pub const COOKIE: &str = "signalpost_session";

/// One answer, read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        csrf_in(&self.body).unwrap_or_else(|| panic!("no CSRF token on the page: {}", self.body))
    }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// The text of the element with this id (up to its first tag), for assertions on one field.
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker)?;
    let open_end = html[start..].find('>')? + start + 1;
    let close = html[open_end..].find('<')? + open_end;
    Some(html[open_end..close].trim().to_string())
}

/// A browser as far as cookies and redirects go.
#[derive(Debug, Clone)]
pub struct WebClient {
    base: String,
    http: reqwest::Client,
    pub cookie: Option<String>,
}

impl WebClient {
    pub fn new(base: &str) -> WebClient {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        WebClient { base: base.trim_end_matches('/').to_string(), http, cookie: None }
    }

    fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let Some((name, rest)) = value.split_once('=') else { continue };
            if name != COOKIE {
                continue;
            }
            let token = rest.split(';').next().unwrap_or_default().to_string();
            self.cookie = if value.contains("Max-Age=0") || token.is_empty() { None } else { Some(token) };
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(token) => request.header("cookie", format!("{COOKIE}={token}")),
            None => request,
        };
        let response = request.send().await.expect("the request reaches the app");
        let status = response.status();
        let headers = response.headers().clone();
        self.absorb(&headers);
        Answer { status, headers, body: response.text().await.unwrap() }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self.http.post(self.url(path)).form(fields);
        self.send(request).await
    }

    /// GETs `page` for its CSRF token, then POSTs `fields` plus that token to `action`.
    pub async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.get(page).await.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Answer {
        self.submit("/login", "/login", &[("username", username), ("password", password)]).await
    }
}

/// A user who signs in with `username` and `password`.
pub async fn user_with_password(store: &Arc<dyn Store>, username: &str, password: &str, role: Role) -> User {
    let user = store
        .create_user(&NewUser { discord_user_id: None, display_name: format!("{username} (display)"), role })
        .await
        .unwrap();
    let hash = web::password::hash(password.to_string()).await.unwrap();
    store.set_local_credentials(user.id, username, Some(&hash), chrono::Utc::now()).await.unwrap();
    user
}
