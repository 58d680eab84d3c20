//! A flood of 100 MiB with a stalled subscriber keeps memory flat: the ring never holds more than its
//! capacity and the subscriber's queue never more than its channel, with every loss counted.

use std::io::Write;

use memtail::LogBuffer;

#[test]
fn a_flood_with_a_stalled_subscriber_stays_bounded() {
    const CAPACITY: usize = 64 * 1024;
    const SUBSCRIBER_CAPACITY: usize = 64;
    const TOTAL: usize = 100 * 1024 * 1024;
    const LINE: usize = 1000;

    let mut buf = LogBuffer::builder()
        .capacity(CAPACITY)
        .subscriber_capacity(SUBSCRIBER_CAPACITY)
        .build();
    let stalled = buf.events();
    let line = {
        let mut line = vec![b'.'; LINE - 1];
        line.push(b'\n');
        line
    };

    let mut written = 0;
    let mut entries = 0u64;
    while written < TOTAL {
        buf.write_all(&line).unwrap();
        written += LINE;
        entries += 1;
        if entries % 4096 == 0 {
            assert!(buf.len() <= CAPACITY);
            assert!(stalled.len() <= SUBSCRIBER_CAPACITY);
        }
    }

    let stats = buf.stats();
    assert_eq!(stats.entries_written, entries);
    assert_eq!(stats.bytes_written, written as u64);
    assert!(buf.len() <= CAPACITY);
    assert_eq!(
        stats.retained_bytes,
        stats.bytes_written - stats.bytes_evicted
    );
    assert_eq!(stats.retained_entries, entries - stats.entries_evicted);
    // The stalled subscriber got its channel's worth (the first entries) and lost the rest, counted.
    assert_eq!(stalled.len(), SUBSCRIBER_CAPACITY);
    assert_eq!(stalled.dropped(), entries - SUBSCRIBER_CAPACITY as u64);
    assert_eq!(stats.subscriber_drops, stalled.dropped());
    let held: Vec<u64> = stalled.try_iter().map(|e| e.seq()).collect();
    assert_eq!(held, (0..SUBSCRIBER_CAPACITY as u64).collect::<Vec<_>>());
}
