//! `AsyncSubscription`: order, exact drop accounting, no lost wake-up, disconnection.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use memtail::LogBuffer;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_arrives_in_order_across_many_waits() {
    // A writer thread racing a follower that keeps catching up and waiting again: a lost wake-up
    // would leave the follower waiting forever (and the deadline would fail the test).
    const ENTRIES: u64 = 50_000;
    let buf = LogBuffer::builder().subscriber_capacity(1 << 17).build();
    let mut live = buf.events_async();
    let writer = std::thread::spawn({
        let buf = buf.clone();
        move || {
            for n in 0..ENTRIES {
                writeln!(&buf, "{n}").unwrap();
                if n % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        }
    });
    for expected in 0..ENTRIES {
        let entry = timeout(DEADLINE, live.recv())
            .await
            .expect("no lost wake-up")
            .expect("the buffer is alive");
        assert_eq!(entry.seq(), expected);
        assert_eq!(&entry[..], format!("{expected}\n").as_bytes());
    }
    writer.join().unwrap();
    assert_eq!(live.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_follower_drops_and_counts_exactly_without_slowing_writers() {
    const PER_WRITER: u64 = 20_000;
    let buf = LogBuffer::builder().subscriber_capacity(8).build();
    let mut live = buf.events_async();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let buf = buf.clone();
            std::thread::spawn(move || {
                for _ in 0..PER_WRITER {
                    buf.append(b"x");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    drop(buf);
    let mut received = 0;
    let mut last = None;
    while let Some(entry) = timeout(DEADLINE, live.next()).await.unwrap() {
        assert!(last < Some(entry.seq()), "in sequence order");
        last = Some(entry.seq());
        received += 1;
    }
    assert_eq!(received, 8, "the queue held 8 entries");
    assert_eq!(received + live.dropped(), 2 * PER_WRITER);
}

#[tokio::test]
async fn a_waiting_follower_wakes_when_the_buffer_goes_away() {
    let buf = LogBuffer::new();
    let mut live = buf.events_async();
    let waiting = tokio::spawn(async move { live.recv().await.map(|entry| entry.seq()) });
    // Let the task start waiting, then drop the last handle from another thread.
    tokio::task::yield_now().await;
    std::thread::spawn(move || drop(buf)).join().unwrap();
    let outcome = timeout(DEADLINE, waiting).await.expect("woken").unwrap();
    assert_eq!(outcome, None);
}

#[tokio::test]
async fn queued_entries_outlive_the_buffer() {
    let buf = LogBuffer::new();
    let (backlog, mut live) = buf.tail_async();
    assert!(backlog.is_empty());
    buf.append(b"last words");
    drop(buf);
    assert_eq!(&live.recv().await.unwrap()[..], b"last words");
    assert!(live.recv().await.is_none());
}

#[tokio::test]
async fn a_thousand_followers_need_no_thread_and_dropping_unsubscribes() {
    // A current-thread runtime: every follower is a task on this one thread.
    let buf = LogBuffer::new();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let mut live = buf.events_async();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                while let Some(entry) = live.recv().await {
                    seqs.push(entry.seq());
                }
                (seqs, live.dropped())
            })
        })
        .collect();
    assert_eq!(buf.stats().subscribers, 1000);
    for _ in 0..10 {
        buf.append(b"tick");
        tokio::task::yield_now().await;
    }
    drop(buf);
    for task in tasks {
        let (seqs, dropped) = timeout(DEADLINE, task).await.unwrap().unwrap();
        assert_eq!((seqs, dropped), ((0..10).collect(), 0));
    }

    let buf = LogBuffer::new();
    let live = buf.events_async();
    assert_eq!(buf.stats().subscribers, 1);
    drop(live);
    assert_eq!(buf.stats().subscribers, 0);
    buf.append(b"nobody listens");
    assert_eq!(buf.stats().subscriber_drops, 0);
}

#[tokio::test]
async fn tail_since_async_resumes_without_gap() {
    let buf = LogBuffer::with_capacity(10);
    for line in ["aaa", "bbb", "ccc", "ddd"] {
        buf.append(line.as_bytes());
    }
    let (replay, mut live) = buf.tail_since_async(1);
    assert_eq!(replay.missed(), 1, "entry 1 was evicted");
    let seqs: Vec<u64> = replay.entries().iter().map(|entry| entry.seq()).collect();
    assert_eq!(seqs, [2, 3]);
    buf.append(b"eee");
    assert_eq!(live.recv().await.unwrap().seq(), 4);
}
