//! What the fuzz targets in `fuzz/` reach that is not public otherwise: the SSO token cache's
//! parser, what a rewrite of the `aws login` cache holds, and the `[server]` routes served over an in-memory connection (the HTTP/1.1 settings
//! and routes of `run`, without a socket). Not an API: hidden from the docs, free to change.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::server::{self, http, Token};
use crate::sources::login::cache::CachedLogin;
use crate::sources::sso::cache::{self, CachedToken};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io;
use std::sync::RwLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// The SSO token cache's parser (what `TokenCache::load` makes of a file's bytes).
pub fn sso_token(bytes: &[u8]) -> Result<CachedToken, String> {
    cache::parse_token(bytes)
}

/// The bytes awscredd writes back to the `aws login` cache for `login` (after a refresh, with
/// [`CachedLogin::renewed`]).
pub fn login_cache_json(login: &CachedLogin) -> Result<Vec<u8>, String> {
    login.to_json()
}

/// How long one request may take to be answered before [`Server::answer`] gives up.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// The `[server]` routes of `run` for one config and token, served one connection at a time.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    token: RwLock<Token>,
    config: watch::Receiver<Config>,
    _config: watch::Sender<Config>,
    metrics: Metrics,
}

impl Server {
    pub fn new(config: Config, token: &str) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (sender, config) = watch::channel(config);
        Ok(Server {
            runtime,
            token: RwLock::new(Token::new(token)),
            config,
            _config: sender,
            metrics: Metrics::new(),
        })
    }

    /// The bytes answered to a client that sends `request` and then closes its side; an
    /// error if the connection fails to end within [`ANSWER_LIMIT`].
    pub fn answer(&self, request: &[u8]) -> io::Result<Vec<u8>> {
        self.runtime.block_on(async {
            let (client, server_side) = tokio::io::duplex(64 * 1024);
            let (mut from_server, mut to_server) = tokio::io::split(client);
            let router = |req: http::Request| async move {
                server::route(req, &self.token, &self.config, &self.metrics).await
            };
            let service =
                service_fn(|req| async { Ok::<_, Infallible>(http::respond(&router, req).await) });
            // A client that closes its side after its request still gets the answer (hyper
            // would otherwise drop an answer still on its way, such as a profile's, which is
            // read from its file on another thread); `run` serves real clients, which do not.
            let mut builder = http::builder(&http::Limits::default());
            builder.half_close(true);
            let conn = builder.serve_connection(TokioIo::new(server_side), service);
            let send = async {
                to_server.write_all(request).await?;
                to_server.shutdown().await
            };
            let mut out = Vec::new();
            let receive = from_server.read_to_end(&mut out);
            let both = async {
                // A malformed request ends the connection with an error after its 400: that
                // is an answer, not a failure of the harness. A request the server stopped
                // reading (it closed after an answer) cannot be sent whole: that is fine too.
                let (_served, _sent, received) = tokio::join!(conn, send, receive);
                received
            };
            tokio::time::timeout(ANSWER_LIMIT, both)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no end to the answer"))??;
            Ok(out)
        })
    }
}
