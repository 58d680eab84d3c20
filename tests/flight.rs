//! The flight recorder's context on error, under two writer threads: each error is printed once
//! with exactly the entries before it (since the previous error), none twice; and what the ring
//! evicted before the printer could read it is said, not lost silently.

use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use memtail::{Level, LogBuffer};
#[path = "support/process.rs"]
mod process;

#[path = "support/shared_writer.rs"]
mod shared_writer;
use shared_writer::Shared;

#[test]
fn each_error_comes_with_the_entries_before_it_once() {
    const BEFORE: usize = 3;
    let buf = LogBuffer::with_capacity(4 << 20);
    let out = Shared::default();
    let printer = buf.on_error(Level::Error, BEFORE, out.clone());
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (buf, start) = (buf.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for n in 0..5000 {
                    // Errors now and then, at times two close together; plain writes too.
                    let (text, level) = match n % 61 {
                        0 | 2 => (format!("w{writer} error {n}\n"), Some(Level::Error)),
                        7 => (format!("w{writer} warn {n}\n"), Some(Level::Warn)),
                        9 => (format!("w{writer} plain {n}\n"), None),
                        _ => (format!("w{writer} debug {n}\n"), Some(Level::Debug)),
                    };
                    match level {
                        Some(level) => buf.append_level(text.as_bytes(), level),
                        None => buf.append(text.as_bytes()),
                    };
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let stats = printer.stop(Duration::from_secs(30));

    let (expected, errors) = expected_output(&buf, BEFORE);
    assert_eq!(errors, 2 * 2 * 82);
    assert_eq!(
        (
            stats.printed,
            stats.missed,
            stats.context_missed,
            stats.failed
        ),
        (errors, 0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.stopped);
    let printed = String::from_utf8(out.0.lock().clone()).unwrap();
    assert_eq!(printed, expected);
}

/// What a printer of ERROR with `before` entries of context should have printed, from the log as
/// it is (all of it retained), and how many errors it holds.
fn expected_output(buf: &LogBuffer, before: usize) -> (String, u64) {
    let mut expected = String::new();
    let mut context: Vec<String> = Vec::new();
    let mut errors = 0;
    for entry in buf.entries() {
        let text = String::from_utf8(entry.to_vec()).unwrap();
        if entry.level() == Some(Level::Error) {
            errors += 1;
            expected.push_str(&format!(
                "--- memtail: entry {} is ERROR; the {} entries before it, then it ---\n",
                entry.seq(),
                context.len()
            ));
            for line in context.drain(..) {
                expected.push_str(&line);
            }
            expected.push_str(&text);
        } else {
            if context.len() == before {
                context.remove(0);
            }
            context.push(text);
        }
    }
    (expected, errors)
}

/// An output whose first write waits for the test: the printer is then known to be inside it,
/// past its look at the ring, while the test writes what it will find next time.
struct Gate {
    out: Shared,
    entered: Option<mpsc::Sender<()>>,
    release: mpsc::Receiver<()>,
}

impl Write for Gate {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Some(entered) = self.entered.take() {
            entered.send(()).unwrap();
            self.release
                .recv_timeout(Duration::from_secs(30))
                .expect("the test never released the printer");
        }
        self.out.write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A printer held inside its first write, with a handle to release it.
fn gated(
    buf: &LogBuffer,
    before: usize,
) -> (
    memtail::ErrorContext,
    Shared,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let out = Shared::default();
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Gate {
        out: out.clone(),
        entered: Some(entered_tx),
        release: release_rx,
    };
    (
        buf.on_error(Level::Error, before, gate),
        out,
        entered,
        release,
    )
}

/// Ten bytes, so that the ring's arithmetic is easy to follow.
fn line(text: &str) -> String {
    format!("{text:<9}\n")
}

#[test]
fn an_error_evicted_before_the_printer_looked_is_reported_in_the_output_and_counted() {
    let buf = LogBuffer::with_capacity(100);
    let (printer, out, entered, release) = gated(&buf, 2);
    buf.append_level(line("e1").as_bytes(), Level::Error);
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    // While the printer is held: an error, then enough to evict it, then another error.
    buf.append_level(line("e2").as_bytes(), Level::Error);
    for n in 0..15 {
        buf.append_level(line(&format!("d{n}")).as_bytes(), Level::Debug);
    }
    buf.append_level(line("e3").as_bytes(), Level::Error);
    assert!(
        buf.entries().iter().all(|entry| entry.seq() > 1),
        "e2 was evicted"
    );
    release.send(()).unwrap();
    let stats = printer.stop(Duration::from_secs(30));
    assert_eq!(
        String::from_utf8(out.0.lock().clone()).unwrap(),
        format!(
            "--- memtail: entry 0 is ERROR; the 0 entries before it, then it ---\n{}\
             --- memtail: 1 entry at ERROR or above was evicted before it could be printed ---\n\
             --- memtail: entry 17 is ERROR; the 2 entries before it, then it ---\n{}{}{}",
            line("e1"),
            line("d13"),
            line("d14"),
            line("e3"),
        )
    );
    assert_eq!(
        (
            stats.printed,
            stats.missed,
            stats.context_missed,
            stats.failed
        ),
        (2, 1, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn a_context_the_ring_evicted_in_part_says_how_much_it_lacks() {
    let buf = LogBuffer::with_capacity(100);
    let (printer, out, entered, release) = gated(&buf, 20);
    buf.append_level(line("e1").as_bytes(), Level::Error);
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    for n in 0..30 {
        buf.append_level(line(&format!("d{n}")).as_bytes(), Level::Debug);
    }
    buf.append_level(line("e2").as_bytes(), Level::Error);
    // The context wanted: the 20 entries before e2 (seq 31), from seq 11 on; the ring keeps 10
    // entries at most.
    let first = buf.entries()[0].seq();
    assert!(first > 11, "{first}");
    release.send(()).unwrap();
    let stats = printer.stop(Duration::from_secs(30));
    let mut expected = format!(
        "--- memtail: entry 0 is ERROR; the 0 entries before it, then it ---\n{}\
         --- memtail: entry 31 is ERROR; the {} entries before it, then it ({} more before them were evicted unread) ---\n",
        line("e1"),
        31 - first,
        first - 11
    );
    for n in first..31 {
        expected.push_str(&line(&format!("d{}", n - 1)));
    }
    expected.push_str(&line("e2"));
    assert_eq!(String::from_utf8(out.0.lock().clone()).unwrap(), expected);
    assert_eq!(
        (stats.printed, stats.missed, stats.context_missed),
        (2, 0, first - 11),
        "{stats:?}"
    );
}

#[test]
fn printers_at_two_levels_each_print_their_own_and_a_stopped_one_lets_go() {
    let buf = LogBuffer::new();
    let (warn_out, error_out) = (Shared::default(), Shared::default());
    let warnings = buf.on_error(Level::Warn, 1, warn_out.clone());
    let errors = buf.on_error(Level::Error, 1, error_out.clone());
    buf.append_level(b"a\n", Level::Info);
    buf.append_level(b"slow\n", Level::Warn);
    buf.append_level(b"b\n", Level::Info);
    buf.append_level(b"down\n", Level::Error);
    let stats = warnings.stop(Duration::from_secs(30));
    assert_eq!((stats.printed, stats.missed), (2, 0), "{stats:?}");
    // Warnings now wake nobody, and the error printer goes on.
    buf.append_level(b"slow again\n", Level::Warn);
    buf.append_level(b"down again\n", Level::Error);
    let stats = errors.stop(Duration::from_secs(30));
    assert_eq!((stats.printed, stats.missed), (2, 0), "{stats:?}");
    assert_eq!(
        String::from_utf8(warn_out.0.lock().clone()).unwrap(),
        "--- memtail: entry 1 is WARN; the 1 entries before it, then it ---\na\nslow\n\
         --- memtail: entry 3 is ERROR; the 1 entries before it, then it ---\nb\ndown\n"
    );
    assert_eq!(
        String::from_utf8(error_out.0.lock().clone()).unwrap(),
        "--- memtail: entry 3 is ERROR; the 1 entries before it, then it ---\nb\ndown\n\
         --- memtail: entry 5 is ERROR; the 1 entries before it, then it ---\nslow again\ndown again\n"
    );
}

#[test]
fn the_printer_prints_what_came_before_the_buffer_closed_and_ends() {
    let buf = LogBuffer::new();
    let out = Shared::default();
    let printer = buf.on_error(Level::Error, 1, out.clone());
    buf.append(b"plain\n");
    buf.append_level(b"last words\n", Level::Error);
    drop(buf);
    let stats = printer.stop(Duration::from_secs(30));
    assert!(stats.stopped);
    assert_eq!(stats.printed, 1);
    assert_eq!(
        String::from_utf8(out.0.lock().clone()).unwrap(),
        "--- memtail: entry 1 is ERROR; the 1 entries before it, then it ---\nplain\nlast words\n"
    );
}

#[test]
fn a_failing_output_is_counted() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = LogBuffer::new();
    let printer = buf.on_error(Level::Error, 1, Broken);
    buf.append_level(b"down\n", Level::Error);
    let stats = printer.stop(Duration::from_secs(30));
    assert_eq!((stats.printed, stats.failed), (0, 1), "{stats:?}");
    assert_eq!(stats.last_error.as_deref(), Some("closed"));
}

#[test]
fn under_a_flood_of_errors_into_a_small_ring_every_error_is_printed_or_reported_missed() {
    let buf = LogBuffer::with_capacity(256);
    let out = Shared::default();
    let printer = buf.on_error(Level::Error, 2, out.clone());
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let buf = buf.clone();
            std::thread::spawn(move || {
                for n in 0..20_000 {
                    let level = if n % 3 == 0 {
                        Level::Error
                    } else {
                        Level::Debug
                    };
                    buf.append_level(format!("w{writer} {n}\n").as_bytes(), level);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let stats = printer.stop(Duration::from_secs(60));
    let errors = 2 * (0..20_000).filter(|n| n % 3 == 0).count() as u64;
    eprintln!(
        "{errors} errors: {} printed, {} missed, {} context entries missed",
        stats.printed, stats.missed, stats.context_missed
    );
    assert_eq!(
        stats.printed + stats.missed + stats.failed,
        errors,
        "{stats:?}"
    );
    assert_eq!(stats.failed, 0);

    // The output agrees with the counters: a heading per printed error, and notices that add up
    // to the missed ones.
    let printed = String::from_utf8(out.0.lock().clone()).unwrap();
    let headings = printed
        .lines()
        .filter(|line| line.starts_with("--- memtail: entry "))
        .count() as u64;
    let noticed: u64 = printed
        .lines()
        .filter(|line| line.contains(" at ERROR or above w"))
        .filter_map(|line| {
            let (count, _) = line.strip_prefix("--- memtail: ")?.split_once(' ')?;
            count.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(
        (headings, noticed),
        (stats.printed, stats.missed),
        "{stats:?}"
    );
}

#[test]
fn a_backlog_longer_than_one_look_is_printed_whole() {
    // The printer looks through at most 4096 entries under one lock: 20 000 wait for it here.
    let buf = LogBuffer::with_capacity(4 << 20);
    let (printer, out, entered, release) = gated(&buf, 3);
    buf.append_level(line("e0").as_bytes(), Level::Error);
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    for n in 0..20_000 {
        let level = if n % 997 == 996 {
            Level::Error
        } else {
            Level::Debug
        };
        buf.append_level(line(&format!("{n}")).as_bytes(), level);
    }
    release.send(()).unwrap();
    let stats = printer.stop(Duration::from_secs(30));
    let (expected, errors) = expected_output(&buf, 3);
    assert_eq!(errors, 1 + 20);
    assert_eq!((stats.printed, stats.missed), (errors, 0), "{stats:?}");
    assert_eq!(String::from_utf8(out.0.lock().clone()).unwrap(), expected);
}

#[test]
fn a_printer_stuck_in_its_output_does_not_hold_stop_or_the_writers() {
    let buf = LogBuffer::new();
    let (printer, out, entered, release) = gated(&buf, 1);
    buf.append_level(b"first\n", Level::Error);
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    // The printer is stuck writing; writers go on, errors included.
    for n in 0..1000 {
        buf.append_level(format!("{n}\n").as_bytes(), Level::Error);
    }
    let stats = printer.stop(Duration::from_millis(100));
    assert!(!stats.stopped, "{stats:?}");
    assert_eq!(stats.printed, 0);
    // Let go, it finishes on its own; the buffer is whole.
    release.send(()).unwrap();
    assert_eq!(buf.stats().entries_written, 1001);
    drop(out);
}

/// An output whose every write waits for the test, after saying so.
struct EachWriteGated {
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
    out: Shared,
}

impl Write for EachWriteGated {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let _ = self.entered.send(());
        // Released by the test, or let go when it is done.
        let _ = self.release.recv();
        self.out.write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_printer_stuck_writing_that_errors_were_missed_holds_neither_stats_nor_stop() {
    process::with_deadline(Duration::from_secs(60), || {
        let buf = LogBuffer::with_capacity(100);
        let out = Shared::default();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let gate = EachWriteGated {
            entered: entered_tx,
            release: release_rx,
            out: out.clone(),
        };
        let printer = buf.on_error(Level::Error, 0, gate);
        buf.append_level(line("first").as_bytes(), Level::Error);
        // Stuck in its first block; meanwhile the small ring evicts many errors unseen.
        entered.recv().unwrap();
        for n in 0..200 {
            buf.append_level(line(&n.to_string()).as_bytes(), Level::Error);
        }
        release.send(()).unwrap();
        // Its next write says errors were missed: stuck there, it holds no lock of the counters.
        entered.recv().unwrap();
        let now = printer.stats();
        assert!(now.missed > 0, "{now:?}");
        assert_eq!(now.printed, 1);
        let stopped = printer.stop(Duration::from_millis(100));
        assert!(!stopped.stopped, "{stopped:?}");
        drop(release);
        assert!(String::from_utf8(out.0.lock().clone())
            .unwrap()
            .starts_with("--- memtail: entry 0 is ERROR"));
    });
}
