//! A tour of memtail: a service logs into a small ring while a follower thread prints what
//! arrives live; then the ring is read back, replayed from a sequence number, and its counters shown.
//!
//! Run it with `cargo run --example quickstart`.

use std::io::Write;
use std::thread;

use memtail::LogBuffer;

fn main() -> std::io::Result<()> {
    // A deliberately small ring (512 bytes), so that eviction shows up in a short run.
    let buf = LogBuffer::builder()
        .capacity(512)
        .subscriber_capacity(1024)
        .build();

    // Follow the log from another thread, as a live tail would.
    let live = buf.events();
    let follower = thread::spawn(move || {
        let mut received = 0;
        for entry in live.iter() {
            print!(
                "  live #{:<3} {}",
                entry.seq(),
                String::from_utf8_lossy(&entry)
            );
            received += 1;
        }
        (received, live.dropped())
    });

    // A "service" writing its log: each writeln! is one entry.
    let mut writer = buf.clone();
    println!("writing 40 requests into a 512-byte ring, followed live:");
    for request in 0..40u32 {
        let status = if request % 7 == 3 { 500 } else { 200 };
        writeln!(
            writer,
            "request={request:<3} path=/items/{} status={status}",
            request * 13 % 97
        )?;
    }

    // Dropping the last writer handles ends the follower's iterator once it has drained.
    drop(writer);
    let stats = buf.stats();
    let snapshot = buf.snapshot();
    let replay = buf.since(20);
    drop(buf);
    let (received, dropped) = follower.join().expect("follower thread panicked");

    println!(
        "\nthe ring now retains {} of {} entries ({} bytes):",
        stats.retained_entries, stats.entries_written, stats.retained_bytes
    );
    print!("{}", String::from_utf8_lossy(&snapshot));

    println!(
        "\nreplay since #20: {} entries retained, {} missed (evicted before we asked)",
        replay.entries().len(),
        replay.missed()
    );
    println!(
        "counters: {} entries evicted ({} bytes), follower received {received} and dropped {dropped}",
        stats.entries_evicted, stats.bytes_evicted
    );
    Ok(())
}
