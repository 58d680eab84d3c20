//! The flight recorder: the detailed log (DEBUG) is kept in memory only, the console gets INFO
//! and above, and the detail is printed when it is wanted: the entries before each error, as
//! the error happens, and the whole ring when the program panics.
//!
//! Run it with `cargo run --example flight_recorder --features tracing`, and with `-- --panic` to
//! see the dump on panic.

use std::time::Duration;

use tracing::{debug, error, info};
use tracing_subscriber::fmt::writer::MakeWriterExt;

fn main() {
    // A global buffer of 256 KiB: the last few thousand debug lines.
    let log = memtail::init_global(memtail::LogBuffer::builder().capacity(256 << 10))
        .expect("the first thing the program does");

    // Every event into memory; INFO and above to the console too.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_writer(log.and(std::io::stdout.with_max_level(tracing::Level::INFO)))
        .init();

    // On a panic: the ring on stderr, then the panic message.
    memtail::dump_on_panic(log);
    // On an error: the 4 debug lines before it, on stderr, once.
    let context = log.on_error(memtail::Level::Error, 4, std::io::stderr());

    for request in 1..=6 {
        debug!(request, "parsed headers");
        debug!(request, cache = "miss", "looked up the cache");
        debug!(request, rows = request * 10, "queried the database");
        if request == 4 {
            debug!(request, attempt = 2, "retrying the payment service");
            error!(request, "payment service unreachable");
        } else {
            info!(request, "ok");
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
