//! The listener behind `serve`: accepts connections up to
//! `max_connections`, wraps them in TLS when configured, and serves each
//! with hyper's HTTP/1.1 under the header read timeout, which also bounds
//! how long an idle keep-alive connection stays open. On shutdown it stops
//! accepting, lets in-flight requests finish and closes idle connections.

pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

use crate::http::ApiError;
use crate::monitoring;

/// Connections over the limit being answered 503 at once, at most; past
/// it such a connection is closed without an answer.
const MAX_REFUSING: usize = 64;
/// Pause after a failed accept (e.g. out of file descriptors), so that the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How the listener protects itself against many or slow clients.
#[derive(Clone)]
pub struct Guards {
    /// Connections served at once.
    pub max_connections: usize,
    /// Longest wait for the TLS handshake, for a request's headers and for
    /// the next request on an idle keep-alive connection.
    pub header_read_timeout: Duration,
    /// Present when serving HTTPS.
    pub tls: Option<TlsAcceptor>,
}

/// Serves `service` on `listener` until `shutdown` completes, then waits
/// for open connections to finish the requests they are answering.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    guards: Guards,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(guards.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(error = %error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let connection = Connection {
            stream,
            peer,
            guards: guards.clone(),
            watcher: graceful.watcher(),
        };

        if let Ok(permit) = open.clone().try_acquire_owned() {
            let service = service.clone();
            tokio::spawn(async move {
                connection.run(Some(service)).await;
                drop(permit);
            });
            continue;
        }
        monitoring::connection_refused();
        tracing::debug!(client.address = %peer.ip(), "connection limit reached; refusing a connection");
        if let Ok(permit) = refusing.clone().try_acquire_owned() {
            tokio::spawn(async move {
                connection.run(None::<S>).await;
                drop(permit);
            });
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One accepted connection, before its stream is known to be plain or TLS.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    guards: Guards,
    watcher: Watcher,
}

impl Connection {
    /// Completes the TLS handshake, if any, then serves `service`, or
    /// answers one 503 and closes when there is none.
    async fn run<S>(self, service: Option<S>)
    where
        S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send,
    {
        let Connection {
            stream,
            peer,
            guards,
            watcher,
        } = self;
        let Some(acceptor) = guards.tls else {
            return drive(stream, peer, service, guards.header_read_timeout, watcher).await;
        };
        let timeout = guards.header_read_timeout;
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => drive(stream, peer, service, timeout, watcher).await,
            Ok(Err(error)) => {
                tracing::debug!(client.address = %peer.ip(), error = %error, "TLS handshake failed");
            }
            Err(_) => tracing::debug!(client.address = %peer.ip(), "TLS handshake timed out"),
        }
    }
}

/// Serves HTTP/1.1 on `stream` until the client closes it, it idles past
/// `timeout` or the service shuts down; without a service, answers one 503.
async fn drive<I, S>(
    stream: I,
    peer: SocketAddr,
    service: Option<S>,
    timeout: Duration,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(service.is_some());
    let io = TokioIo::new(stream);
    let outcome = match service {
        Some(service) => {
            let per_request = service_fn(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                service.clone().oneshot(request)
            });
            watcher
                .watch(builder.serve_connection(io, per_request))
                .await
        }
        None => {
            let refuse = service_fn(|_: hyper::Request<Incoming>| async {
                Ok::<_, Infallible>(ApiError::Overloaded.into_response())
            });
            watcher.watch(builder.serve_connection(io, refuse)).await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(client.address = %peer.ip(), error = %error, "connection closed on an error");
    }
}
