//! Small promises of the public API: thread safety, panics on impossible capacities, `Debug`
//! output that never dumps the log, and unsubscribing.

use std::io::Write;

use memtail::{Builder, Entry, LogBuffer, Replay, Stats, Subscription, TryRecvError};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_are_send_and_sync() {
    assert_send_sync::<LogBuffer>();
    assert_send_sync::<Subscription>();
    assert_send_sync::<Entry>();
    assert_send_sync::<Replay>();
    assert_send_sync::<Stats>();
    assert_send_sync::<Builder>();
}

#[test]
#[should_panic(expected = "memtail: a capacity must be at least 1 byte")]
fn zero_capacity_panics_clearly() {
    let _ = LogBuffer::with_capacity(0);
}

#[test]
#[should_panic(expected = "cannot be addressed")]
fn unaddressable_capacity_panics_clearly() {
    let _ = LogBuffer::with_capacity(isize::MAX as usize + 1);
}

#[test]
#[should_panic(expected = "memtail: a subscriber capacity must be at least 1 entry")]
fn zero_subscriber_capacity_panics_clearly() {
    let _ = LogBuffer::builder().subscriber_capacity(0);
}

#[cfg(target_pointer_width = "64")]
#[test]
fn the_largest_capacity_is_two_to_the_56_minus_one() {
    let buf = LogBuffer::with_capacity((1 << 56) - 1);
    buf.append(b"fits");
    assert_eq!(buf.snapshot(), "fits");
    let too_large = std::panic::catch_unwind(|| LogBuffer::with_capacity(1 << 56));
    assert!(too_large.is_err());
}

#[test]
fn a_huge_capacity_costs_nothing_until_used() {
    // 1 TiB: accepted, and only what is written is allocated (a failure here would abort).
    let buf = LogBuffer::with_capacity(1 << 40);
    buf.append(b"fits");
    assert_eq!(buf.capacity(), 1 << 40);
    assert_eq!(buf.snapshot(), "fits");
}

#[test]
fn debug_output_summarises_and_never_dumps_the_log() {
    let mut buf = LogBuffer::with_capacity(1024);
    writeln!(buf, "secret=hunter2").unwrap();
    let sub = buf.events();
    writeln!(buf, "secret=hunter3").unwrap();

    let shown = format!("{buf:?}");
    assert_eq!(shown, "LogBuffer { capacity: 1024, len: 30, next_seq: 2 }");
    assert!(!format!("{sub:?}").contains("hunter"));
    assert!(!format!("{:?}", buf.since(0)).contains("hunter"));
    assert!(!format!("{:?}", buf.stats()).contains("hunter"));
    assert!(format!("{:?}", LogBuffer::builder()).contains("capacity: 16384"));
    assert_eq!(
        format!("{sub:?}"),
        "Subscription { queued: 1, dropped: 0, .. }"
    );
}

#[test]
fn dropping_or_cancelling_unsubscribes_at_once() {
    let buf = LogBuffer::new();
    let a = buf.events();
    let b = buf.events();
    assert_eq!(buf.stats().subscribers, 2);
    drop(a);
    assert_eq!(buf.stats().subscribers, 1);
    b.cancel();
    assert_eq!(buf.stats().subscribers, 0);
}

#[test]
fn a_subscription_outliving_its_buffer_drains_then_disconnects() {
    let buf = LogBuffer::new();
    let sub = buf.events();
    buf.append(b"last words");
    drop(buf);
    assert_eq!(&sub.try_recv().unwrap()[..], b"last words");
    assert_eq!(sub.try_recv(), Err(TryRecvError::Disconnected));
    sub.cancel(); // harmless once the buffer is gone
}

#[test]
fn a_write_of_exactly_the_capacity_replaces_everything() {
    let buf = LogBuffer::with_capacity(8);
    buf.append(b"abc");
    buf.append(b"12345678");
    assert_eq!(buf.snapshot(), "12345678");
    let stats = buf.stats();
    assert_eq!((stats.entries_evicted, stats.entries_cut), (1, 0));
}

#[test]
fn cut_entries_report_every_byte_as_written_so_write_all_makes_one_entry() {
    let mut buf = LogBuffer::with_capacity(4);
    buf.write_all(b"abcdefgh").unwrap();
    assert_eq!(buf.entries().len(), 1);
    assert_eq!(buf.snapshot(), "abcd");
    assert_eq!(buf.stats().bytes_cut, 4);
}
