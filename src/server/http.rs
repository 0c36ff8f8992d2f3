//! HTTP/1.1 serving for the daemon's listeners: the `[server]` credentials endpoint, and any
//! other listener (metrics, health) that brings its own routes. This module owns the
//! connections; a listener owns only its routes, a plain async function of the request.
//!
//! A flood of clients must never starve the daemon, so every connection lives under
//! [`Limits`]: at most `max_connections` at once, request headers read within
//! `header_read_timeout` (which is also the idle keep-alive timeout: hyper times every wait
//! for a request head), headers no larger than `max_header_bytes`, and a connection at most
//! `connection_lifetime` old. An accept error such as EMFILE pauses the accept loop instead of
//! spinning on it, and closes an idle connection to give the descriptor back.
//!
//! At the cap, a new connection gets the place of the oldest one that has sent no whole
//! request head for [`FRESH_GRACE`] (an idle or a dripping client), else of the oldest one
//! idle between two requests; a connection younger than that is a client whose request is on
//! its way, and is never closed for another. When no connection can go, the new one waits
//! (up to `header_read_timeout`) for a place, in the order they came, rather than being
//! closed. An answer that is the client's error (4xx: no token, an unknown path) closes its
//! connection: a client without the token cannot keep one, so a loop of token-less requests
//! costs it a connection each, and takes no place from the token holder or a probe.
//!
//! A listener is a router and a call:
//!
//! ```no_run
//! # async fn example(stop: tokio::sync::watch::Receiver<bool>) -> std::io::Result<()> {
//! use awscredd::server::http::{serve, Limits, Request, Response};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! let router = |req: Request| async move {
//!     match req.uri().path() {
//!         "/healthz" => Response::new("ok".to_string()),
//!         _ => {
//!             let mut r = Response::new(String::new());
//!             *r.status_mut() = hyper::StatusCode::NOT_FOUND;
//!             r
//!         }
//!     }
//! };
//! serve(listener, router, Limits::default(), stop).await;
//! # Ok(())
//! # }
//! ```

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify};

/// A request as the routes see it: the head only (the routes serve `GET`; a body is not read).
pub type Request = hyper::Request<()>;
/// A response with its whole body.
pub type Response = hyper::Response<String>;

/// Descriptors kept free for the daemon's own work (credentials files, locks, child process
/// pipes, HTTPS connections to AWS) when the connection cap is fitted to `RLIMIT_NOFILE`.
pub const DESCRIPTOR_RESERVE: u64 = 256;

/// How long a connection may take to finish its answer once it is asked to stop.
const GRACE: Duration = Duration::from_secs(2);
/// How long the accept loop pauses after an error that is not about one connection.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning per this interval about the cap or accept errors.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// hyper's smallest read buffer.
const MIN_READ_BUFFER: usize = 8192;
/// How long a new connection keeps its place at the cap before its request head is read: a
/// client on its way is not closed for the next one (see the module header).
pub const FRESH_GRACE: Duration = Duration::from_millis(200);

/// The bounds every connection lives under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a client to send a request head, from the connection's start or the end of
    /// its previous answer (so also the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Size of the request line and headers together, past which the answer is 431.
    pub max_header_bytes: usize,
    /// Number of request headers.
    pub max_headers: usize,
    /// Age past which a connection is closed once its current answer is sent.
    pub connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            connection_lifetime: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// These limits with the connection cap lowered, if needed, so that the connections fit
    /// in `open_files` descriptors with [`DESCRIPTOR_RESERVE`] left for the daemon (with a
    /// small limit, at most a quarter of it).
    pub fn within_descriptors(mut self, open_files: u64) -> Self {
        let budget = open_files
            .saturating_sub(DESCRIPTOR_RESERVE)
            .max(open_files / 4)
            .max(1);
        let budget = usize::try_from(budget).unwrap_or(usize::MAX);
        self.max_connections = self.max_connections.min(budget).max(1);
        self
    }
}

/// Serves `listener` with `router` under `limits` until `stop` turns true (or its sender is
/// gone). Open connections are then asked to finish their answer and close.
pub async fn serve<R, F>(
    listener: TcpListener,
    router: R,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    R: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let router = Arc::new(router);
    let table = Arc::new(Mutex::new(Table::new(limits.max_connections)));
    let http = Arc::new(builder(&limits));
    let mut accept_warned: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                let Some(pause) = accept_pause(&e) else {
                    continue;
                };
                if is_out_of_descriptors(&e) {
                    lock(&table).evict_one();
                }
                if due(&mut accept_warned) {
                    tracing::warn!(
                        "cannot accept connections: {e}; pausing {} ms",
                        pause.as_millis()
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        let admitted = tokio::select! {
            admitted = wait_for_room(&table, limits.header_read_timeout) => admitted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Some((slot, evicted)) = admitted else {
            continue; // no place within the header timeout: this one is closed
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            Arc::clone(&http),
            Arc::clone(&router),
            slot,
            evicted,
            limits.connection_lifetime,
            stop.clone(),
        ));
    }
}

/// The HTTP/1.1 settings of every connection under `limits`.
pub(crate) fn builder(limits: &Limits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_READ_BUFFER))
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    http
}

/// The answer to one request: the router's, with no keep-alive for a client that is refused
/// (see the module header).
pub(crate) async fn respond<R, F>(router: &R, req: hyper::Request<Incoming>) -> Response
where
    R: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let (head, _body) = req.into_parts();
    let mut response = router(Request::from_parts(head, ())).await;
    if response.status().is_client_error() {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// One connection, until it ends, is evicted, grows too old or the listener stops.
async fn connection<R, F>(
    stream: TcpStream,
    http: Arc<http1::Builder>,
    router: Arc<R>,
    slot: Slot,
    evicted: oneshot::Receiver<()>,
    lifetime: Duration,
    mut stop: watch::Receiver<bool>,
) where
    R: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let (table, id) = (Arc::clone(&slot.table), slot.id);
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let router = Arc::clone(&router);
        let table = Arc::clone(&table);
        async move {
            let _busy = Busy::start(&table, id);
            Ok::<_, Infallible>(respond(&*router, req).await)
        }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => {
            if let Err(e) = ended {
                tracing::debug!("connection closed: {e}");
            }
            return;
        }
        _ = evicted => return,
        _ = tokio::time::sleep(lifetime) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(GRACE, conn).await;
    drop(slot);
}

/// `Some(pause)` for an accept error that is not about one connection (out of descriptors or
/// memory, or anything unexpected), `None` for one that is (the client gave up first).
fn accept_pause(e: &io::Error) -> Option<Duration> {
    match e.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => None,
        _ => Some(ACCEPT_PAUSE),
    }
}

#[cfg(unix)]
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE
    )
}

#[cfg(not(unix))]
fn is_out_of_descriptors(_e: &io::Error) -> bool {
    false
}

/// A place for a new connection: at once, or once a connection ends, goes idle or passes its
/// [`FRESH_GRACE`]; `None` after `limit` without one.
async fn wait_for_room(
    table: &Arc<Mutex<Table>>,
    limit: Duration,
) -> Option<(Slot, oneshot::Receiver<()>)> {
    let deadline = tokio::time::Instant::now() + limit;
    let room = Arc::clone(&lock(table).room);
    loop {
        let next = match Slot::admit(table) {
            Ok(admitted) => return Some(admitted),
            Err(next) => next,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        let until = next.map_or(deadline, |at| {
            deadline.min(now + at.saturating_duration_since(Instant::now()))
        });
        tokio::select! {
            _ = room.notified() => {}
            _ = tokio::time::sleep_until(until) => {}
        }
    }
}

/// True (and remembers now) when the last warning is older than [`WARN_EVERY`].
fn due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The open connections, oldest first. Dropping an entry's sender tells its task to close.
struct Table {
    max: usize,
    next_id: u64,
    open: BTreeMap<u64, Entry>,
    cap_warned: Option<Instant>,
    /// Told when a place may have come free (a connection ended or went idle).
    room: Arc<Notify>,
}

struct Entry {
    /// When it was accepted.
    opened: Instant,
    /// Answering a request now.
    busy: bool,
    /// Has sent a whole request head at least once.
    served: bool,
    _evict: oneshot::Sender<()>,
}

impl Table {
    fn new(max: usize) -> Self {
        Table {
            max: max.max(1),
            next_id: 0,
            open: BTreeMap::new(),
            cap_warned: None,
            room: Arc::new(Notify::new()),
        }
    }

    /// Room for one more connection at `now`: its id and the receiver that fires when it is
    /// evicted; else when a connection that holds a place will pass its [`FRESH_GRACE`]
    /// (`None`: only when one ends or goes idle).
    fn admit(&mut self, now: Instant) -> Result<(u64, oneshot::Receiver<()>), Option<Instant>> {
        if self.open.len() >= self.max {
            if due(&mut self.cap_warned) {
                tracing::warn!(
                    max_connections = self.max,
                    "the connection cap is reached: idle connections are closed to make room, \
                     and new ones wait for a place"
                );
            }
            self.make_room(now)?;
        }
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.open.insert(
            id,
            Entry {
                opened: now,
                busy: false,
                served: false,
                _evict: tx,
            },
        );
        Ok((id, rx))
    }

    /// Closes the oldest connection that has sent no request head for [`FRESH_GRACE`], else
    /// the oldest one idle between requests; else says when the next one passes its grace.
    fn make_room(&mut self, now: Instant) -> Result<(), Option<Instant>> {
        let victim = self
            .open
            .iter()
            .find(|(_, e)| !e.busy && !e.served && now.duration_since(e.opened) >= FRESH_GRACE)
            .or_else(|| self.open.iter().find(|(_, e)| !e.busy && e.served))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.open.remove(&id);
                Ok(())
            }
            None => Err(self
                .open
                .values()
                .filter(|e| !e.busy && !e.served)
                .map(|e| e.opened + FRESH_GRACE)
                .min()),
        }
    }

    /// Out of descriptors: closes the oldest connection that never sent a request, else the
    /// oldest idle one, however young; false when every connection is answering a request.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .open
            .iter()
            .find(|(_, e)| !e.busy && !e.served)
            .or_else(|| self.open.iter().find(|(_, e)| !e.busy))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.open.remove(&id);
                true
            }
            None => false,
        }
    }

    fn set_busy(&mut self, id: u64, busy: bool) {
        if let Some(e) = self.open.get_mut(&id) {
            e.busy = busy;
            e.served = true;
        }
        if !busy {
            self.room.notify_one();
        }
    }
}

/// A connection's place in the table, given back when the connection task ends.
struct Slot {
    table: Arc<Mutex<Table>>,
    id: u64,
}

impl Slot {
    fn admit(table: &Arc<Mutex<Table>>) -> Result<(Slot, oneshot::Receiver<()>), Option<Instant>> {
        let (id, evicted) = lock(table).admit(Instant::now())?;
        let slot = Slot {
            table: Arc::clone(table),
            id,
        };
        Ok((slot, evicted))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        table.open.remove(&self.id);
        table.room.notify_one();
    }
}

/// Marks a connection as answering a request while it lives.
struct Busy<'a> {
    table: &'a Mutex<Table>,
    id: u64,
}

impl<'a> Busy<'a> {
    fn start(table: &'a Mutex<Table>, id: u64) -> Self {
        lock(table).set_busy(id, true);
        Busy { table, id }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        lock(self.table).set_busy(self.id, false);
    }
}

/// An address a listener (`[imds]`, `[metrics]`) cannot listen on: the one thing that can fail
/// at its start (`run` exits 78).
#[derive(Debug)]
pub struct BindError {
    /// What was to listen, for the message (`[metrics] listener`).
    pub what: &'static str,
    pub listen: std::net::SocketAddr,
    pub source: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} cannot listen on {}: {}",
            self.what, self.listen, self.source
        )
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(rx: &mut oneshot::Receiver<()>) -> bool {
        rx.try_recv()
            .is_err_and(|e| e == oneshot::error::TryRecvError::Closed)
    }

    #[test]
    fn the_cap_evicts_clients_that_never_sent_a_request_first() {
        let t0 = Instant::now();
        let later = t0 + FRESH_GRACE;
        let mut t = Table::new(3);
        let (a, mut a_rx) = t.admit(t0).unwrap();
        let (b, mut b_rx) = t.admit(t0).unwrap();
        let (_c, mut c_rx) = t.admit(t0).unwrap();
        t.set_busy(a, true);
        t.set_busy(b, true);
        t.set_busy(b, false); // b has been served and is idle now
        let (d, _d_rx) = t.admit(later).unwrap();
        t.set_busy(d, true);
        assert!(closed(&mut c_rx));
        assert!(!closed(&mut b_rx));
        let (_e, _e_rx) = t.admit(later).unwrap();
        assert!(closed(&mut b_rx));
        assert!(!closed(&mut a_rx));
        assert_eq!(t.open.len(), 3);
    }

    /// A client whose request head is on its way keeps its place: the next one waits until
    /// its grace is over, or takes the place of an idle one.
    #[test]
    fn the_cap_never_closes_a_connection_in_its_grace() {
        let t0 = Instant::now();
        let mut t = Table::new(2);
        let (a, _a_rx) = t.admit(t0).unwrap();
        let (_b, mut b_rx) = t.admit(t0 + FRESH_GRACE / 2).unwrap();
        t.set_busy(a, true);
        assert_eq!(
            t.admit(t0 + FRESH_GRACE).unwrap_err(),
            Some(t0 + FRESH_GRACE / 2 + FRESH_GRACE)
        );
        assert!(!closed(&mut b_rx));
        t.set_busy(a, false);
        let (_c, _) = t.admit(t0 + FRESH_GRACE).unwrap();
        assert!(!closed(&mut b_rx), "the idle one went, not the young one");
        assert_eq!(t.open.len(), 2);
    }

    #[test]
    fn the_cap_waits_when_every_connection_is_answering() {
        let now = Instant::now();
        let mut t = Table::new(2);
        for _ in 0..2 {
            let (id, _) = t.admit(now).unwrap();
            t.set_busy(id, true);
        }
        assert_eq!(t.admit(now + FRESH_GRACE).unwrap_err(), None);
        assert_eq!(t.open.len(), 2);
    }

    #[test]
    fn accept_errors_about_one_client_do_not_pause() {
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(accept_pause(&aborted), None);
        let other = io::Error::other("boom");
        assert_eq!(accept_pause(&other), Some(ACCEPT_PAUSE));
        #[cfg(unix)]
        {
            let emfile = io::Error::from_raw_os_error(nix::libc::EMFILE);
            assert_eq!(accept_pause(&emfile), Some(ACCEPT_PAUSE));
            assert!(is_out_of_descriptors(&emfile));
        }
    }

    /// Any router: what a second listener (metrics) does with this module.
    #[tokio::test]
    async fn serves_a_router_until_stopped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let router =
            |req: Request| async move { Response::new(format!("at {}", req.uri().path())) };
        let server = tokio::spawn(serve(listener, router, Limits::default(), stop));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("at /metrics"), "{answer}");
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn the_cap_fits_the_descriptor_limit() {
        let l = Limits::default();
        assert_eq!(l.clone().within_descriptors(20_000).max_connections, 64);
        assert_eq!(l.clone().within_descriptors(320).max_connections, 64);
        assert_eq!(l.clone().within_descriptors(200).max_connections, 50);
        assert_eq!(l.clone().within_descriptors(100).max_connections, 25);
        assert_eq!(l.within_descriptors(0).max_connections, 1);
    }
}
