//! `log` users: `env_logger` writing into a `LogBuffer` through `Target::Pipe` gives one entry
//! per record, from any thread.

use std::thread;

use memtail::LogBuffer;

#[test]
fn env_logger_pipe_makes_one_entry_per_record() {
    const THREADS: usize = 3;
    const RECORDS: usize = 300;
    let buf = LogBuffer::with_capacity(1 << 20);
    env_logger::Builder::new()
        .target(env_logger::Target::Pipe(Box::new(buf.clone())))
        .filter_level(log::LevelFilter::Info)
        .format_timestamp(None)
        .try_init()
        .expect("the only logger in this test binary");

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..RECORDS {
                    log::info!("thread {t} record {i} {}", "y".repeat(i % 50));
                    log::debug!("filtered out");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let entries = buf.entries();
    assert_eq!(entries.len(), THREADS * RECORDS);
    for entry in &entries {
        let line = std::str::from_utf8(entry).unwrap();
        assert!(line.starts_with("[INFO "), "{line:?}");
        assert!(line.contains("record"), "{line:?}");
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'));
    }
}
