//! The server's connections: the accept loop with caps on open connections (in all and per
//! peer address), deadlines for a request's head and for an idle keep-alive connection, and
//! the graceful end of every connection at shutdown.
//!
//! The deadlines are enforced here, in a wrapper around the socket, rather than by hyper's
//! `header_read_timeout`: in hyper 1.x that one timer runs from the moment a connection waits
//! for a request head (a new connection, or a keep-alive one after its response) until the
//! head is complete, so it cannot tell a slow head from an idle keep-alive connection, and it
//! needs a timer in every connection anyway. The wrapper knows whether a request is in flight
//! (the service marks it, until the response body is dropped) and so applies:
//! - a new connection: the whole head within `header_timeout` of the accept;
//! - a keep-alive connection after a response: idle for at most `idle_timeout`, then the head
//!   within `header_timeout` of its first byte;
//! - a request in flight (however long its execution or stream takes): no deadline.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// At most one warning line per this long when connections are refused; the line says how
/// many were refused since the last one.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Pause after an accept error such as EMFILE, so the loop does not spin while nothing can be
/// accepted.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Bounds on the server's connections.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Connections open at once, all peers together.
    pub max_connections: usize,
    /// Connections open at once from one peer address.
    pub max_per_peer: usize,
    /// Time for a request's head: from the accept (first request) or from its first byte
    /// (later requests on a keep-alive connection).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

/// Accepts until `stop` is cancelled, then stops accepting, asks every connection to close
/// once its request in flight is answered (idle ones close at once) and waits for them all.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnLimits, stop: CancellationToken) {
    let counts = Arc::new(Counts::new(limits.max_connections, limits.max_per_peer));
    let warn = Throttled::default();
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                warn.note(|n| {
                    tracing::warn!(error = %e, errors = n, "cannot accept connections (open-file limit?)");
                });
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let slot = match counts.take(peer.ip()) {
            Ok(slot) => slot,
            Err(limit) => {
                // Closed at once, before a byte is read: a refused client costs nothing more.
                drop(stream);
                warn.note(|n| {
                    tracing::warn!(
                        refused = n,
                        peer = %peer.ip(),
                        limit = limit.name(),
                        max_connections = limits.max_connections,
                        max_connections_per_peer = limits.max_per_peer,
                        "refusing connections: a connection limit is reached (--max-connections, --max-connections-per-peer)"
                    );
                });
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(stream, peer, app.clone(), limits.clone(), stop.clone(), slot));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    stop: CancellationToken,
    _slot: Slot,
) {
    let state = Arc::new(ConnState::default());
    let io = TokioIo::new(Watched::new(stream, state.clone(), &limits));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::new(state.clone());
        let mut req = req.map(Body::new);
        // What `ConnectInfo<SocketAddr>` extracts in the handlers.
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            // The router is always ready: it has no back-pressure of its own.
            let resp = tower_service::Service::call(&mut app, req).await.unwrap_or_else(|e: Infallible| match e {});
            Ok::<_, Infallible>(resp.map(|body| Tracked { body, _busy: busy }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The deadlines are the wrapper's (see the module comment); hyper's own timer stays off.
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Total,
    PerPeer,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Limit::Total => "max-connections",
            Limit::PerPeer => "max-connections-per-peer",
        }
    }
}

/// Open connections, in all and per peer address.
struct Counts {
    max: usize,
    max_per_peer: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One open connection, counted until dropped.
struct Slot {
    counts: Arc<Counts>,
    peer: IpAddr,
}

impl Counts {
    fn new(max: usize, max_per_peer: usize) -> Counts {
        Counts { max, max_per_peer, open: Mutex::new((0, HashMap::new())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        // Every update is one statement: a panic elsewhere cannot leave the counts half-made.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Limit> {
        let mut open = self.lock();
        if open.0 >= self.max {
            return Err(Limit::Total);
        }
        let of_peer = open.1.entry(peer).or_insert(0);
        if *of_peer >= self.max_per_peer {
            return Err(Limit::PerPeer);
        }
        *of_peer += 1;
        open.0 += 1;
        Ok(Slot { counts: self.clone(), peer })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.peer);
            }
        }
    }
}

/// A warning said at most once per [`WARN_EVERY`], with the number of occurrences it stands for.
#[derive(Default)]
struct Throttled {
    count: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Throttled {
    fn note(&self, say: impl FnOnce(u64)) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        say(self.count.swap(0, Ordering::Relaxed));
    }
}

/// What the service tells the socket wrapper: requests in flight, and how many have ended.
#[derive(Default)]
struct ConnState {
    busy: AtomicUsize,
    ended: AtomicU64,
    /// The connection's task, as of its last read while a request was in flight: woken when
    /// the request ends, so the wrapper arms the idle deadline even if hyper does not read
    /// again on its own (it waits for the socket, which an idle client never makes ready).
    reader: Mutex<Option<std::task::Waker>>,
}

/// A request in flight, from its complete head until its response body is dropped (sent, or
/// abandoned with the connection).
struct Busy(Arc<ConnState>);

impl Busy {
    fn new(state: Arc<ConnState>) -> Busy {
        state.busy.fetch_add(1, Ordering::SeqCst);
        Busy(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
        let reader = self.0.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = reader {
            w.wake();
        }
    }
}

/// A response body that keeps its request marked in flight until it is dropped.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, with the head and idle deadlines applied to its reads.
struct Watched {
    io: TcpStream,
    state: Arc<ConnState>,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Requests ended when the current wait began; a change means a new wait.
    ended: u64,
    /// The current wait for a request head began (accept, or the end of the last response).
    waiting_since: Instant,
    /// The first byte of the head being waited for arrived.
    head_since: Option<Instant>,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Watched {
    fn new(io: TcpStream, state: Arc<ConnState>, limits: &ConnLimits) -> Watched {
        let now = Instant::now();
        Watched {
            io,
            state,
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            ended: 0,
            waiting_since: now,
            head_since: None,
            timer: Box::pin(tokio::time::sleep(limits.header_timeout)),
        }
    }

    /// When the current wait for a head must be over.
    fn deadline(&self) -> Instant {
        match self.head_since {
            Some(t) => t + self.header_timeout,
            // A new connection: its client has a request to send, so the head deadline runs
            // from the accept; a bare connection is not an idle keep-alive one.
            None if self.ended == 0 => self.waiting_since + self.header_timeout,
            None => self.waiting_since + self.idle_timeout,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.busy.load(Ordering::SeqCst) > 0 {
            // A request in flight (its body being read, or hyper watching for a hang-up).
            let mut reader = this.state.reader.lock().unwrap_or_else(|e| e.into_inner());
            if !reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *reader = Some(cx.waker().clone());
            }
            drop(reader);
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let ended = this.state.ended.load(Ordering::SeqCst);
        let now = Instant::now();
        if ended != this.ended {
            this.ended = ended;
            this.waiting_since = now;
            this.head_since = None;
        }
        if now >= this.deadline() {
            return Poll::Ready(Err(timed_out(if this.head_since.is_some() || ended == 0 {
                "request head not complete in time"
            } else {
                "keep-alive connection idle too long"
            })));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.head_since.is_none() {
                    this.head_since = Some(now);
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let deadline = this.deadline();
        this.timer.as_mut().reset(deadline.into());
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timed_out("request head not complete in time"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cap_in_all_and_per_peer_and_free_on_drop() {
        let counts = Arc::new(Counts::new(3, 2));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let a1 = counts.take(a).unwrap();
        let _a2 = counts.take(a).unwrap();
        assert_eq!(counts.take(a).err(), Some(Limit::PerPeer));
        let _b1 = counts.take(b).unwrap();
        assert_eq!(counts.take(b).err(), Some(Limit::Total));
        drop(a1);
        assert!(counts.take(a).is_ok(), "a closed connection frees its place");
    }

    #[test]
    fn throttled_warning_counts_what_it_did_not_say() {
        let t = Throttled::default();
        let mut said = Vec::new();
        for _ in 0..5 {
            t.note(|n| said.push(n));
        }
        assert_eq!(said, vec![1], "one line for a burst");
        *t.last.lock().unwrap() = Some(Instant::now() - WARN_EVERY);
        t.note(|n| said.push(n));
        assert_eq!(said, vec![1, 5], "the next line counts the silent ones");
    }
}
