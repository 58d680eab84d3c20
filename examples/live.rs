//! A small service that logs through `tracing` into a [`LogBuffer`] and serves it to browsers.
//!
//! Run it with `cargo run --example live --features http`, then open the address it prints.
//! The port comes from the first argument, else from `PORT`, else 8080; it listens on 127.0.0.1
//! only.

use std::io::Write;
use std::time::Duration;

use memtail::LogBuffer;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() {
    let port = match port() {
        Ok(port) => port,
        Err(message) => {
            eprintln!("live: {message}");
            std::process::exit(2);
        }
    };

    let buf = LogBuffer::with_capacity(256 * 1024);
    // The log goes into the buffer with its ANSI colours, which the viewer renders. Only this
    // example's own events: axum, hyper and tower-http stay out of the log they serve.
    let only_this_app =
        tracing_subscriber::filter::Targets::new().with_target("live", tracing::Level::TRACE);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(true)
                .with_writer(buf.clone())
                .with_filter(only_this_app),
        )
        .init();

    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("live: cannot listen on 127.0.0.1:{port}: {error}");
            std::process::exit(1);
        }
    };
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    println!("live: serving http://{address}/");

    tokio::spawn(service(buf.clone()));
    // With memtail's connection limits (header and idle timeouts, a cap on connections) and
    // TCP_NODELAY, which keeps Nagle's algorithm from holding an event back for up to 40 ms.
    if let Err(error) = memtail::http::Config::new().serve(buf, listener).await {
        eprintln!("live: {error}");
        std::process::exit(1);
    }
}

/// The port: the first argument, else `PORT`, else 8080.
fn port() -> Result<u16, String> {
    let (given, from) = match std::env::args().nth(1) {
        Some(arg) => (arg, "the first argument"),
        None => match std::env::var("PORT") {
            Ok(port) => (port, "PORT"),
            Err(_) => return Ok(8080),
        },
    };
    given
        .trim()
        .parse()
        .map_err(|_| format!("{from} must be a port number from 0 to 65535, not {given:?}"))
}

/// Pretends to be a busy service: a few varied lines a second.
async fn service(mut buf: LogBuffer) {
    let paths = ["/", "/api/users", "/api/orders/17", "/health", "/login"];
    let mut tick = tokio::time::interval(Duration::from_millis(350));
    for n in 0u64.. {
        tick.tick().await;
        let path = paths[(n % paths.len() as u64) as usize];
        let micros = 180 + (n * 7919) % 4000;
        match n % 11 {
            0 | 3 | 6 | 8 => tracing::info!(path, micros, "GET {path} 200"),
            1 | 9 => tracing::debug!(pool.idle = 4 - n % 4, "connection checked out"),
            2 => tracing::trace!(bytes = n * 13 % 900, "read request body"),
            4 => tracing::warn!(path, micros = micros * 40, "slow request"),
            // tracing escapes control characters in messages; a line with colours of its own
            // goes into the buffer directly.
            5 => {
                let _ = writeln!(
                    buf,
                    "\x1b[1;35mdeploy v1.{}\x1b[0m is \x1b[32mhealthy\x1b[0m, \x1b[38;5;208m{} replicas\x1b[0m",
                    n / 11,
                    3 + n % 4
                );
            }
            7 => tracing::error!(
                "request {n} failed: connection reset\n    at db::pool::checkout (src/db/pool.rs:88)\n    at api::orders::get (src/api/orders.rs:41)"
            ),
            _ => tracing::info!(user = "<img src=x onerror=alert(1)>", "login attempt"),
        }
    }
}
