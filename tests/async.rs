//! `Tail` in async code, a position in the ring: order, exact loss accounting (the oldest are
//! lost), batches, no lost wake-up, disconnection.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use memtail::{LogBuffer, Start};
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_arrives_in_order_across_many_waits() {
    // A writer thread racing a follower that keeps catching up and waiting again: a lost wake-up
    // would leave the follower waiting forever (and the deadline would fail the test).
    const ENTRIES: u64 = 50_000;
    // A ring that holds them all (about 340 KB): whatever the scheduling, nothing is evicted.
    let buf = LogBuffer::with_capacity(1 << 20);
    let mut live = buf.tail_from(Start::Now);
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
async fn a_slow_follower_loses_the_oldest_and_counts_exactly_without_slowing_writers() {
    const PER_WRITER: u64 = 20_000;
    let buf = LogBuffer::builder().subscriber_capacity(8).build();
    let mut live = buf.tail_from(Start::Now);
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
    let retained = buf.stats().retained_entries;
    assert!(retained < 2 * PER_WRITER, "the 16 KiB ring evicted some");
    drop(buf);
    let mut seqs = Vec::new();
    while let Some(entry) = timeout(DEADLINE, live.next()).await.unwrap() {
        seqs.push(entry.seq());
    }
    // What the ring still held, the newest entries, in order and without a gap; the rest lost.
    let first = 2 * PER_WRITER - retained;
    assert_eq!(seqs, (first..2 * PER_WRITER).collect::<Vec<_>>());
    assert_eq!(live.dropped(), first);
    assert_eq!(seqs.len() as u64 + live.dropped(), 2 * PER_WRITER);
}

#[tokio::test]
async fn a_follower_that_falls_behind_learns_the_exact_loss_at_the_place_it_happened() {
    // 100 entries of 100 bytes into a 1000-byte ring: a follower that reads after every 30
    // entries finds the ring evicted some of them each time.
    let buf = LogBuffer::with_capacity(1000);
    let mut live = buf.tail_from(Start::Now);
    let line = [b'x'; 100];
    let (mut received, mut missed, mut expected) = (0u64, 0u64, 0u64);
    for round in 0..10 {
        for _ in 0..30 {
            buf.append(&line);
        }
        while let Ok(batch) = live.try_recv_batch() {
            // The loss comes right before the batch, and the batch has no gap of its own.
            let first = expected + batch.missed();
            let seqs: Vec<u64> = batch.entries().iter().map(|e| e.seq()).collect();
            assert_eq!(
                seqs,
                (first..first + seqs.len() as u64).collect::<Vec<_>>(),
                "round {round}"
            );
            missed += batch.missed();
            received += batch.entries().len() as u64;
            expected = batch.next_seq();
        }
        assert!(missed > 0, "the ring evicted entries before they were read");
    }
    assert_eq!(received + missed, 300);
    assert_eq!(live.dropped(), missed);
    assert_eq!(buf.stats().follower_missed, missed);
}

#[tokio::test]
async fn a_batch_is_bounded_in_entries_and_bytes() {
    let buf = LogBuffer::builder()
        .capacity(1 << 20)
        .subscriber_capacity(100)
        .build();
    let mut live = buf.tail_from(Start::Now);
    for _ in 0..1000 {
        buf.append(&[b's'; 10]);
    }
    let batch = live.recv_batch().await.unwrap();
    assert_eq!(batch.entries().len(), 100, "at most `capacity` entries");
    assert_eq!(live.len(), 900);

    let mut live = buf.tail_from(Start::Now);
    for _ in 0..10 {
        buf.append(&[b'm'; 20_000]);
    }
    let batch = live.recv_batch().await.unwrap();
    assert_eq!(
        batch.entries().len(),
        3,
        "at most 64 KiB: 3 entries of 20 000 bytes"
    );

    let mut live = buf.tail_from(Start::Now);
    buf.append(&vec![b'L'; 100_000]);
    buf.append(b"after");
    let batch = live.recv_batch().await.unwrap();
    assert_eq!(
        batch.entries().len(),
        1,
        "one entry longer than 64 KiB comes alone"
    );
    assert_eq!(batch.entries()[0].len(), 100_000);
    assert_eq!(&live.recv().await.unwrap()[..], b"after");
}

#[tokio::test]
async fn receiving_one_by_one_and_in_batches_mixes_without_loss() {
    let buf = LogBuffer::builder().subscriber_capacity(4).build();
    let mut live = buf.tail_from(Start::At(0));
    for n in 0..10u8 {
        buf.append(&[n]);
    }
    let mut seqs = vec![live.recv().await.unwrap().seq()];
    let batch = live.recv_batch().await.unwrap();
    assert_eq!(batch.missed(), 0);
    seqs.extend(batch.entries().iter().map(|e| e.seq()));
    seqs.push(live.try_recv().unwrap().seq());
    while let Ok(batch) = live.try_recv_batch() {
        seqs.extend(batch.entries().iter().map(|e| e.seq()));
    }
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    assert_eq!((live.dropped(), live.len(), live.next_seq()), (0, 0, 10));
}

#[tokio::test]
async fn waiting_for_a_batch_is_cancel_safe() {
    let buf = LogBuffer::new();
    let mut live = buf.tail_from(Start::Now);
    for _ in 0..100 {
        // A batch that loses the race against a ready timer takes nothing.
        tokio::select! {
            biased;
            _ = std::future::ready(()) => {}
            _ = live.recv_batch() => panic!("nothing was written"),
        }
    }
    buf.append(b"one");
    tokio::select! {
        biased;
        _ = std::future::ready(()) => {}
        _ = live.recv_batch() => panic!("the ready branch comes first"),
    }
    assert_eq!(&live.recv().await.unwrap()[..], b"one");
}

#[tokio::test]
async fn a_follower_from_the_future_starts_with_the_next_entry() {
    let buf = LogBuffer::new();
    buf.append(b"zero");
    let mut live = buf.tail_from(Start::At(1_000));
    buf.append(b"one");
    let batch = live.recv_batch().await.unwrap();
    assert_eq!((batch.missed(), batch.entries()[0].seq()), (0, 1));
}

#[tokio::test]
async fn a_waiting_follower_wakes_when_the_buffer_goes_away() {
    let buf = LogBuffer::new();
    let mut live = buf.tail_from(Start::Now);
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
    let backlog = buf.since(0);
    let mut live = buf.tail_from(Start::At(backlog.next_seq()));
    assert!(backlog.entries().is_empty());
    buf.append(b"last words");
    drop(buf);
    assert_eq!(&live.recv().await.unwrap()[..], b"last words");
    assert!(live.recv().await.is_none());
}

#[tokio::test]
async fn a_thousand_followers_need_no_thread_and_dropping_one_stops_it() {
    // A current-thread runtime: every follower is a task on this one thread.
    let buf = LogBuffer::new();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let mut live = buf.tail_from(Start::Now);
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                while let Some(entry) = live.recv().await {
                    seqs.push(entry.seq());
                }
                (seqs, live.dropped())
            })
        })
        .collect();
    assert_eq!(buf.stats().followers, 1000);
    assert_eq!(buf.stats().subscribers, 0, "followers are not subscribers");
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
    let live = buf.tail_from(Start::Now);
    assert_eq!(buf.stats().followers, 1);
    drop(live);
    assert_eq!(buf.stats().followers, 0);
    buf.append(b"nobody listens");
    assert_eq!(buf.stats().follower_missed, 0);
}

#[tokio::test]
async fn a_tail_from_where_since_ended_resumes_without_gap() {
    let buf = LogBuffer::with_capacity(10);
    for line in ["aaa", "bbb", "ccc", "ddd"] {
        buf.append(line.as_bytes());
    }
    let replay = buf.since(1);
    let mut live = buf.tail_from(Start::At(replay.next_seq()));
    assert_eq!(replay.missed(), 1, "entry 1 was evicted");
    let seqs: Vec<u64> = replay.entries().iter().map(|entry| entry.seq()).collect();
    assert_eq!(seqs, [2, 3]);
    buf.append(b"eee");
    assert_eq!(live.recv().await.unwrap().seq(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_followers_racing_two_writers_miss_no_wake_up() {
    // Followers that keep catching up and waiting again while two threads write: each must
    // account for every entry, the last one included, while the buffer is alive (a lost wake-up
    // would leave one waiting until the deadline; closing the buffer would wake it, so the buffer
    // stays open until they are done).
    const PER_WRITER: u64 = 5_000;
    const FOLLOWERS: usize = 64;
    let buf = LogBuffer::builder()
        .capacity(64 * 1024)
        .subscriber_capacity(16)
        .build();
    let followers: Vec<_> = (0..FOLLOWERS)
        .map(|_| {
            let mut live = buf.tail_from(Start::Now);
            tokio::spawn(async move {
                let (mut received, mut last) = (0u64, None);
                while received + live.dropped() < 2 * PER_WRITER {
                    let batch = live.recv_batch().await.expect("the buffer is alive");
                    for entry in batch.entries() {
                        assert!(last < Some(entry.seq()), "in order");
                        last = Some(entry.seq());
                    }
                    received += batch.entries().len() as u64;
                    tokio::task::yield_now().await;
                }
                (received, live.dropped(), last)
            })
        })
        .collect();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let buf = buf.clone();
            std::thread::spawn(move || {
                for n in 0..PER_WRITER {
                    writeln!(&buf, "{n}").unwrap();
                    if n % 128 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let mut dropped_total = 0;
    for follower in followers {
        let (received, dropped, last) = timeout(DEADLINE, follower)
            .await
            .expect("every follower saw the end")
            .unwrap();
        assert_eq!(received + dropped, 2 * PER_WRITER);
        assert_eq!(last, Some(2 * PER_WRITER - 1), "the last entry arrived");
        dropped_total += dropped;
    }
    assert_eq!(buf.stats().follower_missed, dropped_total);
}

#[test]
fn a_tail_moves_between_threads_and_tasks() {
    fn movable<T: Send + Sync + Unpin + 'static>() {}
    movable::<memtail::Tail>();
}
