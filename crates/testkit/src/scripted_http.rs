//! The HTTP server every REST fake (Discord, Alpaca, Binance) runs on, with the one thing `axum::serve`
//! cannot do: close a connection without answering, for scripted disconnects.

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use hyper::StatusCode;
use tower::ServiceExt as _;

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted disconnect")
    }
}

impl std::error::Error for DropConnection {}

/// A response that [`serve`] turns into a closed connection with nothing written.
pub(crate) fn dropped() -> Response {
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(DropConnection);
    response
}

/// Serves HTTP/1.1 with hyper directly rather than `axum::serve`, because a scripted disconnect must close
/// the connection without writing a response, which only a failing hyper service can do.
pub(crate) async fn serve(listener: tokio::net::TcpListener, router: Router) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Without TCP_NODELAY a reply written soon after the last one waits for its delayed ACK (40 ms).
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move {
                    let response = router.oneshot(request.map(Body::new)).await.unwrap_or_else(|never| match never {});
                    if response.extensions().get::<DropConnection>().is_some() {
                        Err(DropConnection)
                    } else {
                        Ok(response)
                    }
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            // An error here is the scripted disconnect or a client going away: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
        while connections.try_join_next().is_some() {}
    }
}
