//! The pages that are not built yet: `/providers` says it waits for provider signals (issue #6).

use crate::WebState;
use crate::error::AppError;
use crate::layout::Layout;
use crate::session::CurrentUser;
use askama::Template;
use axum::Router;
use axum::response::Html;
use axum::routing::get;

pub fn routes() -> Router<WebState> {
    Router::new().route("/providers", get(providers))
    // `/`, `/signals`, `/trades` and `/stats` are served by `overview`, `inbox`, `trades` and `stats_page`.
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    layout: Layout,
    heading: String,
    text: String,
}

async fn providers(user: CurrentUser) -> Result<Html<String>, AppError> {
    let page = NoticePage {
        layout: Layout::for_user(&user, "Providers", "/providers"),
        heading: "Providers".into(),
        text: "Not available yet: reading provider channels, and ranking providers by the outcomes of their \
               signals, comes with issue #6. Nothing is shown here until there is real data to show."
            .into(),
    };
    Ok(Html(page.render()?))
}
