//! The `[metrics]` listener of `run`: `/metrics` (Prometheus text format), `/healthz` and
//! `/readyz`, served by [`super::http`] on its own address, without a token: nothing it
//! answers is secret (profile and session names, times, counts). A scrape encodes what
//! [`Metrics`] already holds; it never runs a source or reads a file.

use super::http::{self, Limits, Request, Response};
use super::{answer, health};
use crate::config::MetricsEndpoint;
use crate::metrics::{self, Metrics};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The `[metrics]` address cannot be bound: a configuration problem (`run` exits 78).
pub use super::http::BindError;

/// A bound `[metrics]` listener, ready for [`serve`].
pub struct Listener {
    tcp: TcpListener,
    listen: SocketAddr,
}

/// Binds the address: the one thing that can fail at start.
pub async fn bind(endpoint: &MetricsEndpoint) -> Result<Listener, BindError> {
    let tcp = TcpListener::bind(endpoint.listen)
        .await
        .map_err(|source| BindError {
            what: "[metrics] listener",
            listen: endpoint.listen,
            source,
        })?;
    Ok(Listener {
        tcp,
        listen: endpoint.listen,
    })
}

/// Serves until `stop` turns true.
pub async fn serve(
    listener: Listener,
    limits: Limits,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    tracing::info!(listen = %listener.listen, "serving /metrics, /healthz and /readyz");
    let router = move |req: Request| {
        let metrics = Arc::clone(&metrics);
        async move { route(&req, &metrics) }
    };
    http::serve(listener.tcp, router, limits, stop).await;
}

fn route(req: &Request, metrics: &Metrics) -> Response {
    if req.method() != Method::GET {
        return answer(405, r#"{"Message":"only GET is served"}"#.to_string());
    }
    let path = req.uri().path();
    if let Some(r) = health::route(path, metrics) {
        return r;
    }
    if path != "/metrics" {
        return answer(404, r#"{"Message":"unknown path"}"#.to_string());
    }
    let mut response = Response::new(metrics.encode());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}
