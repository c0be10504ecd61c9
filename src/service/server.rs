//! The HTTP/1.1 server of `hotspot run`: accepts connections on the
//! listener and serves the API router on each with hyper, within bounds
//! that slow, idle or numerous clients cannot push past:
//!
//! * **header timeout** (`--header-timeout`, default 10 s): a request's head
//!   (request line and headers) must be complete within this time of the
//!   connection opening or of the previous answer on it, else the
//!   connection is closed. This ends slowloris clients and idle keep-alive
//!   connections alike;
//! * **connections** (`--max-connections`, default 512): at most this many
//!   are served at once; further ones wait in the listen backlog until one
//!   closes;
//! * **read buffer** ([`MAX_BUF`]) per connection, which also caps a
//!   request's head;
//! * the body's own limits (size, arrival time, bytes in flight) are the
//!   intake handler's (`source::http`).
//!
//! On stop, the listener closes, idle connections close at once and busy
//! ones after their answer; [`serve`] returns when every connection has
//! ended.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The connection limits (see the module doc).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The longest a client may take to send a request's head, counted
    /// from the connection's start or from the previous answer on a
    /// keep-alive connection (so it is the idle keep-alive timeout too).
    pub header_timeout: Duration,
    /// Connections served at once (at least 1).
    pub max_connections: usize,
}

/// A connection's largest read buffer, bytes (also the largest request
/// head).
pub(crate) const MAX_BUF: usize = 64 << 10;

/// Serves `app` on `listener` until `stop` turns true, then lets the
/// connections finish (see the module doc).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let max_connections = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // The peer gave up before it was accepted: nothing to do.
                    // Anything else (out of file descriptors) is waited out.
                    use std::io::ErrorKind::*;
                    if !matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused) {
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_BUF)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    // Every connection task holds a slot until it ends.
    let _ = slots
        .acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX))
        .await;
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
