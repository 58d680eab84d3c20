//! The flight recorder: the detailed log (DEBUG) is kept in memory only, the console gets INFO
//! and above, and the detail is printed when it is wanted: the entries of a request before its
//! error, as the error happens, and the last entries when the program panics.
//!
//! Run it with `cargo run --example flight_recorder --features tracing`, and with `-- --panic` to
//! see the dump on panic.

use std::time::Duration;

use tracing::{debug, error, info};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

fn main() {
    // A global buffer of 256 KiB: the last few thousand debug lines.
    let log = memtail::init_global(memtail::LogBuffer::builder().capacity(256 << 10))
        .expect("the first thing the program does");

    // Every event into memory; INFO and above to the console too.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stdout)
                .with_ansi(false)
                .without_time()
                .with_filter(LevelFilter::INFO),
        )
        .with(log.layer().with_filter(LevelFilter::DEBUG))
        .init();

    // On a panic: the panic as an entry, the last 50 entries on stderr, then the panic message.
    memtail::PanicHook::new(log)
        .dump_to_stderr()
        .last_entries(50)
        .install();
    // On an error: up to 4 debug lines of the same request before it, on stderr, once.
    let context = log.on_error(memtail::Level::Error, 4, std::io::stderr());

    for id in 1..=6 {
        let request = tracing::info_span!("request", id);
        let _entered = request.enter();
        debug!(target: "shop::http", "parsed headers");
        debug!(target: "shop::cache", cache = "miss", "looked up the cache");
        debug!(target: "shop::db", rows = id * 10, "queried the database");
        if id == 4 {
            debug!(target: "shop::payment", attempt = 2, "retrying the payment service");
            error!(target: "shop::payment", "payment service unreachable");
        } else {
            info!(target: "shop::http", "ok");
        }
    }

    // The error context is printed by a thread of its own: stopping it prints what is left.
    context.stop(Duration::from_secs(5));
    println!(
        "the console saw INFO and ERROR; memory holds all {} entries",
        log.stats().retained_entries
    );

    if std::env::args().any(|arg| arg == "--panic") {
        panic!("something unexpected: the log above is what led here");
    }
}
