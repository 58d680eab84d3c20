//! A tracing app whose logs go to memory and, in the background, to a file (as JSON lines) and to
//! stderr. On exit, both publishers are stopped and their counters printed.
//!
//! Run it with `cargo run --example publish` (optionally with a path for the file).

use std::path::PathBuf;
use std::time::Duration;

use memtail::publish::{FilePublisher, WriterPublisher};
use memtail::{Entry, LogBuffer};

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("memtail-publish-example.log"));

    let buf = LogBuffer::with_capacity(256 * 1024);
    // Each event is one `write` into the buffer, so one entry. (With the `tracing` feature,
    // `.with_writer(buf.clone())` does the same and also records each entry's level.)
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    // Formatting happens on the publisher's thread, never on the logging path.
    let file = buf
        .publisher(FilePublisher::new(&path)?)
        .name("file")
        .interval(Duration::from_millis(100))
        .transform(json_line)
        .start();
    let stderr = buf
        .publisher(WriterPublisher::new(std::io::stderr()))
        .name("stderr")
        .start();

    for order in 1..=20u32 {
        tracing::info!(order, items = order % 4 + 1, "order placed");
        if order % 7 == 0 {
            tracing::warn!(order, "payment retried");
        }
    }
    tracing::error!("inventory service unreachable\nwill retry in 5 s");

    for handle in [file, stderr] {
        let name = handle.name().to_owned();
        let stats = handle.stop(Duration::from_secs(5));
        println!(
            "publisher {name:>6}: {} delivered, {} dropped, {} failed attempts, last error: {}",
            stats.delivered,
            stats.dropped(),
            stats.failed_attempts,
            stats.last_error.as_deref().unwrap_or("none"),
        );
    }
    println!("JSON lines appended to {}", path.display());
    Ok(())
}

/// One entry as a JSON line: `{"seq":3,"msg":"..."}`.
fn json_line(entry: &Entry) -> Option<String> {
    let text = String::from_utf8_lossy(entry);
    let mut msg = String::with_capacity(text.len());
    for c in text.trim_end_matches('\n').chars() {
        match c {
            '"' => msg.push_str("\\\""),
            '\\' => msg.push_str("\\\\"),
            '\n' => msg.push_str("\\n"),
            '\t' => msg.push_str("\\t"),
            c if c.is_control() => msg.push_str(&format!("\\u{:04x}", c as u32)),
            c => msg.push(c),
        }
    }
    Some(format!("{{\"seq\":{},\"msg\":\"{msg}\"}}\n", entry.seq()))
}
