//! Accepting connections: the listen backlog, and every connection served as HTTP/1.1
//! or HTTP/2 (cleartext, "prior knowledge"), whichever the client speaks.
use std::convert::Infallible;
use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connections the kernel may hold for the simulator before it accepts them.
/// `TcpListener::bind` listens with std's 128: a containment burst on a 200-symbol
/// account opens some 250 connections within 10 ms, and past 128 waiting ones Linux
/// drops the handshake, so the client's retransmission a second later is what would
/// connect. An exchange's load balancers take such a burst; so does the simulator.
/// (The system's own cap, `net.core.somaxconn`, still applies.)
const LISTEN_BACKLOG: u32 = 4096;

pub(super) fn listen(port: u16) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // As `TcpListener::bind` does: a port just freed can be bound again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(LISTEN_BACKLOG)
}

/// Requests one HTTP/2 connection may have in flight. hyper's default (200) is below a
/// 200-symbol account's containment burst (about 260 cancels): the rest would wait a
/// whole round trip for a free stream. An HTTP/1.1 client opens a connection per
/// request in flight instead, and is not limited.
const MAX_STREAMS_PER_CONNECTION: u32 = 4096;

/// How long to wait after accepting failed for want of resources (descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serve every connection until `stop` turns true, then stop accepting and wait for the
/// answers in flight (the caller bounds that wait).
pub(super) async fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http2()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let in_flight = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (io, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // A peer that gave up before it was accepted costs that connection
                // only; anything else (out of descriptors, say) would fail again at
                // once, so the loop waits a moment instead of spinning.
                let gone = [ErrorKind::ConnectionAborted, ErrorKind::ConnectionReset];
                if !gone.contains(&e.kind()) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        // HTTP/2 writes an answer's headers and body as separate frames; with Nagle's
        // algorithm the body would wait for the client's delayed ACK (40 ms on Linux).
        let _ = io.set_nodelay(true);
        let connection = http
            .serve_connection(TokioIo::new(io), service(app.clone(), peer))
            .into_owned();
        let connection = in_flight.watch(connection);
        tokio::spawn(async move {
            // A client that hangs up mid-request ends its connection, not the server.
            let _ = connection.await;
        });
    }
    drop(listener);
    in_flight.shutdown().await;
}

/// The router, with the peer's address where handlers look for it (`ConnectInfo`).
fn service(
    app: Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, request.map(axum::body::Body::new)).await }
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// A burst of connections the simulator has not accepted yet all complete their
    /// handshake at once: none waits for the retransmission a dropped one needs (1 s).
    #[tokio::test]
    async fn a_burst_of_300_connections_waits_to_be_accepted_without_a_drop() {
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if cap < 300 {
            eprintln!("skipped: net.core.somaxconn is {cap}, below the 300 this needs");
            return;
        }
        let listener = super::listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Instant::now();
        // Nothing accepts meanwhile: every connection waits in the kernel's queue.
        let streams: Vec<TcpStream> = (0..300)
            .map(|i| {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                    .unwrap_or_else(|e| panic!("connection {i} of 300: {e}"))
            })
            .collect();
        assert!(started.elapsed() < Duration::from_millis(900));
        let mut accepted = 0;
        while accepted < streams.len() {
            tokio::time::timeout(Duration::from_secs(1), listener.accept())
                .await
                .expect("every connection is waiting")
                .unwrap();
            accepted += 1;
        }
    }
}
