//! `memtail::log::init`: the `log` crate's records into a buffer, from several threads, one entry
//! each, with their levels; a second logger is refused.

use memtail::{Level, LogBuffer};

#[test]
fn log_records_are_entries_with_their_levels() {
    let buf = LogBuffer::with_capacity(1 << 20);
    memtail::log::init(&buf, log::LevelFilter::Info).unwrap();
    let threads: Vec<_> = (0..3)
        .map(|thread| {
            std::thread::spawn(move || {
                for n in 0..100 {
                    log::info!(target: "worker", "thread {thread} record {n}");
                    log::debug!("filtered out");
                }
                log::error!(target: "worker", "thread {thread} failed");
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let entries = buf.entries();
    assert_eq!(entries.len(), 303);
    let errors: Vec<_> = entries
        .iter()
        .filter(|entry| entry.level() == Some(Level::Error))
        .collect();
    assert_eq!(errors.len(), 3);
    assert!(errors
        .iter()
        .all(|entry| entry.starts_with(b"ERROR worker: thread ")));
    assert!(errors.iter().all(|entry| entry.target() == Some("worker")));
    assert!(entries
        .iter()
        .all(|entry| entry.ends_with(b"\n") && !entry.starts_with(b"DEBUG")));
    assert!(memtail::log::init(&buf, log::LevelFilter::Info).is_err());
}
