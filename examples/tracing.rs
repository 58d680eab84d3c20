//! Plug memtail into `tracing_subscriber` next to stderr, then read the recent log back.
//!
//! Run it with `cargo run --example tracing --features tracing`.

use tracing_subscriber::fmt::writer::MakeWriterExt;

fn main() {
    let buf = memtail::LogBuffer::with_capacity(64 * 1024);

    // Everything goes to stderr; INFO and above also go to the in-memory ring.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr.and(buf.clone().with_max_level(tracing::Level::INFO)))
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .init();

    let (backlog, live) = buf.tail();
    assert!(backlog.is_empty());

    tracing::debug!("only on stderr");
    tracing::info!(user = "ada", "logged in");
    tracing::warn!(disk = "93%", "disk almost full");

    println!(
        "--- the ring holds {} entries:",
        buf.stats().retained_entries
    );
    print!("{}", String::from_utf8_lossy(&buf.snapshot()));
    println!("--- followed live:");
    for entry in live.try_iter() {
        print!("#{} {}", entry.seq(), String::from_utf8_lossy(&entry));
    }
}
