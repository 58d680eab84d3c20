//! The usual `tracing` set-up: the console shows what `RUST_LOG` asks for (INFO when it is not
//! set), and memtail keeps DEBUG and above in memory through its own layer, whatever the console
//! shows. At the end, the program prints what memory holds, as people read it.
//!
//! Run it with `cargo run --example tracing --features tracing`, and with `RUST_LOG=debug` or
//! `RUST_LOG=warn` in front to change the console alone.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::prelude::*;

fn main() {
    let buf = memtail::LogBuffer::with_capacity(1 << 20);
    tracing_subscriber::registry()
        // The console, on standard error: RUST_LOG, or INFO when it is not set.
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(
                    EnvFilter::builder()
                        .with_default_directive(LevelFilter::INFO.into())
                        .from_env_lossy(),
                ),
        )
        // Memory: DEBUG and above, with level, target, time and span, at a fifth of fmt's cost.
        .with(buf.layer().with_filter(LevelFilter::DEBUG))
        .init();

    let request = tracing::info_span!("request", id = 42);
    request.in_scope(|| {
        tracing::debug!(target: "my_app::db", rows = 3, "query done");
        tracing::info!(target: "my_app::api", user = "ada", "logged in");
    });
    tracing::warn!(target: "my_app", disk = "93%", "disk almost full");

    println!("--- memory holds {} entries:", buf.stats().retained_entries);
    for entry in buf.entries() {
        print!("{}", entry.rendered());
    }
}
