//! `/admin`: every account, its role and how it signs in. Needs the admin role ([`AdminUser`]).

use crate::WebState;
use crate::error::AppError;
use crate::layout::Layout;
use crate::session::AdminUser;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin", get(admin))
}

#[derive(Debug)]
struct UserRow {
    id: i64,
    name: String,
    role: &'static str,
    discord: String,
    username: String,
    created: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    layout: Layout,
    users: Vec<UserRow>,
}

async fn admin(State(state): State<WebState>, AdminUser(me): AdminUser) -> Result<Html<String>, AppError> {
    let mut users = Vec::new();
    for user in state.store.list_users().await? {
        let credentials = state.store.local_credentials(user.id).await?;
        users.push(UserRow {
            id: user.id.0,
            name: user.display_name,
            role: user.role.as_str(),
            discord: user.discord_user_id.map_or_else(|| "not linked".into(), |id| format!("linked ({id})")),
            username: credentials.map_or_else(
                || "—".into(),
                |c| {
                    if c.password_hash.is_some() { c.username } else { format!("{} (link only)", c.username) }
                },
            ),
            created: user.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        });
    }
    let page = AdminPage { layout: Layout::for_user(&me, "Admin", "/admin"), users };
    Ok(Html(page.render()?))
}
