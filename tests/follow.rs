//! Following files through what real log files do, each asserted exactly: no line lost or
//! repeated. Every wait is a bounded one (a receive with a deadline), never a bare sleep.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use memtail::follow::{follow_file, follow_reader, Follow, Follower, Watching};
use memtail::{LogBuffer, Subscription};

const DEADLINE: Duration = Duration::from_secs(20);
/// How long a test waits for a follower to stop.
const STOP_WAIT: Duration = Duration::from_secs(20);

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("memtail-follow-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn append(path: &PathBuf, bytes: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(bytes.as_bytes()).unwrap();
}

/// Empties the file in place, as logrotate's `copytruncate` does.
fn truncate(path: &PathBuf) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(0).unwrap();
}

/// The next `n` entries, as text; fails after the deadline.
fn next(live: &Subscription, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let entry = live
                .recv_timeout(DEADLINE)
                .expect("an entry within the deadline");
            String::from_utf8(entry.to_vec()).unwrap()
        })
        .collect()
}

/// Subscribes to `buf`, then follows `path` into it, from where `follow` says.
fn start(buf: &LogBuffer, path: &PathBuf, follow: Follow) -> (Subscription, Follower) {
    let live = buf.events();
    let follower = follow.file(path, buf);
    assert!(follower.wait_ready(DEADLINE));
    (live, follower)
}

/// The entries that arrived and were not taken yet, as text.
fn arrived(live: &Subscription) -> Vec<String> {
    live.try_iter()
        .map(|e| String::from_utf8_lossy(&e).into_owned())
        .collect()
}

/// Nothing more arrived, checked after the follower was stopped (so nothing more can).
fn nothing_more(live: &Subscription) {
    let rest = arrived(live);
    assert!(rest.is_empty(), "unexpected entries: {rest:?}");
}

#[test]
fn appended_lines_arrive_one_entry_each_from_the_end() {
    let dir = Dir::new("append");
    let path = dir.file("app.log");
    append(&path, "before we looked\n");
    let buf = LogBuffer::new();
    let live = buf.events();
    let follower = follow_file(&path, &buf);
    assert!(follower.wait_ready(DEADLINE));
    append(&path, "one\ntwo\n");
    append(&path, "three\n");
    assert_eq!(next(&live, 3), ["one\n", "two\n", "three\n"]);
    let stats = follower.stop(STOP_WAIT);
    assert_eq!((stats.lines, stats.bytes_read), (3, 14));
    nothing_more(&live);
}

#[test]
fn last_lines_counts_like_tail_n_and_an_unfinished_line_waits_for_its_end() {
    let dir = Dir::new("last");
    let path = dir.file("app.log");
    append(&path, "1\n2\n3\n4");
    let buf = LogBuffer::new();
    let live = buf.events();
    let follower = Follow::new()
        .last_lines(2)
        .idle_flush(Duration::from_secs(3600))
        .file(&path, &buf);
    // As `tail -n 2`: the unfinished "4" is the second of the last two lines.
    assert_eq!(next(&live, 1), ["3\n"]);
    append(&path, "5\n");
    assert_eq!(next(&live, 1), ["45\n"]);
    follower.stop(STOP_WAIT);
    nothing_more(&live);
}

#[test]
fn a_partial_line_becomes_an_entry_after_the_idle_time() {
    let dir = Dir::new("partial");
    let path = dir.file("app.log");
    File::create(&path).unwrap();
    let buf = LogBuffer::new();
    let live = buf.events();
    let follower = Follow::new()
        .idle_flush(Duration::from_millis(100))
        .file(&path, &buf);
    assert!(follower.wait_ready(DEADLINE));
    append(&path, "Password: ");
    assert_eq!(next(&live, 1), ["Password: "]);
    append(&path, "(hidden)\n");
    assert_eq!(next(&live, 1), ["(hidden)\n"]);
    let stats = follower.stop(STOP_WAIT);
    assert_eq!((stats.lines, stats.partial_flushes), (2, 1));
    nothing_more(&live);
}

#[test]
fn truncation_in_place_restarts_from_the_beginning() {
    truncation(Follow::new(), "truncate");
}

#[test]
fn truncation_in_place_restarts_from_the_beginning_when_polling() {
    truncation(Follow::new().polling(true), "truncate-poll");
}

fn truncation(follow: Follow, name: &str) {
    let dir = Dir::new(name);
    let path = dir.file("app.log");
    append(&path, "");
    let buf = LogBuffer::new();
    let (live, follower) = start(&buf, &path, follow);
    append(&path, "a long line before the copy\nanother\n");
    assert_eq!(
        next(&live, 2),
        ["a long line before the copy\n", "another\n"]
    );
    // logrotate's copytruncate: the file is emptied in place, then written again.
    truncate(&path);
    append(&path, "fresh\n");
    assert_eq!(next(&live, 1), ["fresh\n"]);
    let stats = follower.stop(STOP_WAIT);
    assert_eq!(stats.truncations, 1);
    nothing_more(&live);
}

/// logrotate's `copytruncate` copies the file to `app.log.1`, then truncates it: what was
/// written after the follower's last read is in the copy, and read from there, in order, before
/// what comes after the truncation. (`tail -F` loses it.) A poll every hour: the follower looks
/// when it starts and when it is stopped, never in between.
#[test]
fn lines_written_just_before_a_copytruncate_are_read_from_the_copy() {
    let dir = Dir::new("copytruncate");
    let path = dir.file("app.log");
    append(&path, "read at the start\n");
    let buf = LogBuffer::new();
    let follow = Follow::new()
        .polling(true)
        .poll_interval(Duration::from_secs(3600))
        .announce(true);
    let (live, follower) = start(&buf, &path, follow);
    append(&path, "not read yet\nnor this\n");
    // An older copy, and a compressed one: not this file's.
    fs::write(dir.file("app.log.2"), "read at the start\nsomething else\n").unwrap();
    fs::write(
        dir.file("app.log.1.gz"),
        "read at the start\nnot read yet\n",
    )
    .unwrap();
    fs::copy(&path, dir.file("app.log.1")).unwrap();
    truncate(&path);
    append(&path, "after the truncation\n");
    let stats = follower.stop(STOP_WAIT);
    let got = arrived(&live);
    assert_eq!(
        got,
        [
            "not read yet\n",
            "nor this\n",
            "memtail: file truncated (the 22 bytes written before were read from its copy \
             app.log.1)\n",
            "after the truncation\n",
        ]
    );
    assert_eq!(stats.truncations, 1);
    assert_eq!(stats.recovered_bytes, 22);
}

/// `tail -F` takes a file truncated and written past its old length before it looked for an
/// append (and prints the tail end of the new text), or one written back to the same length for
/// nothing new. The follower compares the bytes it read last with what the file has there now.
/// A poll every hour: the follower looks when it starts and when it is stopped, whatever the
/// machine is doing in between.
#[test]
fn a_file_truncated_and_written_again_before_the_follower_looked_is_read_from_its_start() {
    let dir = Dir::new("rewritten");
    let cases = [
        (
            "longer",
            "old line one\nold line two\n",
            "new line one\nnew line two\nnew line three\n",
        ),
        ("as long", "2026-12-04 one\n", "2026-12-05 two\n"),
        ("shorter", "a line that is long\n", "short\n"),
    ];
    for (name, old, new) in cases {
        let path = dir.file(&format!("{}.log", name.replace(' ', "-")));
        append(&path, old);
        let buf = LogBuffer::new();
        let follow = Follow::new()
            .polling(true)
            .poll_interval(Duration::from_secs(3600));
        let (live, follower) = start(&buf, &path, follow);
        truncate(&path);
        append(&path, new);
        let stats = follower.stop(STOP_WAIT);
        let got = arrived(&live);
        let want: Vec<String> = new.split_inclusive('\n').map(str::to_owned).collect();
        assert_eq!(got, want, "{name}");
        assert_eq!(stats.truncations, 1, "{name}");
    }
}

#[test]
fn rotation_by_rename_finishes_the_old_file_then_follows_the_new_one() {
    rotation(Follow::new(), "rotate");
}

#[test]
fn rotation_by_rename_finishes_the_old_file_then_follows_the_new_one_when_polling() {
    rotation(Follow::new().polling(true), "rotate-poll");
}

fn rotation(follow: Follow, name: &str) {
    let dir = Dir::new(name);
    let path = dir.file("app.log");
    let mut old = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let buf = LogBuffer::new();
    let (live, follower) = start(&buf, &path, follow);
    writeln!(old, "old 1").unwrap();
    assert_eq!(next(&live, 1), ["old 1\n"]);
    fs::rename(&path, dir.file("app.log.1")).unwrap();
    // The writer has not noticed yet: it still writes to the renamed file, a partial line last.
    writeln!(old, "old 2").unwrap();
    write!(old, "old 3, cut short").unwrap();
    append(&path, "new 1\n");
    append(&path, "new 2\n");
    assert_eq!(
        next(&live, 4),
        ["old 2\n", "old 3, cut short", "new 1\n", "new 2\n"]
    );
    let stats = follower.stop(STOP_WAIT);
    assert_eq!((stats.rotations, stats.partial_flushes), (1, 1));
    nothing_more(&live);
}

#[test]
fn a_file_created_later_is_read_from_its_start() {
    let dir = Dir::new("later");
    let path = dir.file("app.log");
    let buf = LogBuffer::new();
    let (live, follower) = start(&buf, &path, Follow::new());
    append(&path, "first\nsecond\n");
    assert_eq!(next(&live, 2), ["first\n", "second\n"]);
    let stats = follower.stop(STOP_WAIT);
    assert_eq!((stats.rotations, stats.errors), (0, 0));
    nothing_more(&live);
}

#[test]
fn deletion_waits_for_a_new_file() {
    let dir = Dir::new("delete");
    let path = dir.file("app.log");
    append(&path, "");
    let buf = LogBuffer::new();
    let (live, follower) = start(&buf, &path, Follow::new());
    append(&path, "before\n");
    assert_eq!(next(&live, 1), ["before\n"]);
    fs::remove_file(&path).unwrap();
    append(&path, "after\n");
    assert_eq!(next(&live, 1), ["after\n"]);
    let stats = follower.stop(STOP_WAIT);
    assert_eq!((stats.rotations, stats.errors), (1, 0));
    nothing_more(&live);
}

#[test]
fn a_line_longer_than_the_capacity_keeps_its_first_bytes() {
    let dir = Dir::new("long");
    let path = dir.file("app.log");
    append(&path, "");
    let buf = LogBuffer::with_capacity(64);
    let (live, follower) = start(&buf, &path, Follow::new());
    let long = "x".repeat(200);
    append(&path, &format!("{long}\nshort\n"));
    let entries = next(&live, 2);
    assert_eq!(entries[0], long[..64]);
    assert_eq!(entries[1], "short\n");
    let stats = follower.stop(STOP_WAIT);
    assert_eq!(stats.bytes_cut, 201 - 64);
    nothing_more(&live);
}

#[test]
fn errors_are_reported_by_a_method_naming_the_file() {
    let dir = Dir::new("error");
    // A directory where a file should be: it opens, but cannot be read.
    let path = dir.file("not-a-file");
    fs::create_dir(&path).unwrap();
    let buf = LogBuffer::new();
    let follower = Follow::new().last_lines(1).file(&path, &buf);
    assert!(follower.wait_ready(DEADLINE));
    let error = follower.last_error().expect("an error");
    assert!(error.to_string().contains("not-a-file"), "{error}");
    assert!(follower.stats().errors >= 1);
    assert!(buf.is_empty());
}

#[test]
fn a_reader_is_followed_to_its_end_with_a_prefix() {
    let buf = LogBuffer::new();
    let input = "alpha\nbeta\r\ngamma".as_bytes();
    let stats = Follow::new().prefix("in: ").reader(input, &buf).wait();
    let entries: Vec<_> = buf.entries().iter().map(|e| e.to_vec()).collect();
    assert_eq!(
        entries,
        [&b"in: alpha\n"[..], b"in: beta\r\n", b"in: gamma"]
    );
    assert_eq!((stats.lines, stats.partial_flushes), (3, 1));

    let buf = LogBuffer::new();
    follow_reader(std::io::empty(), &buf).wait();
    assert!(buf.is_empty());
}

#[test]
fn notifications_are_used_where_the_kernel_has_them_and_polling_when_asked() {
    let dir = Dir::new("watching");
    let path = dir.file("app.log");
    let buf = LogBuffer::new();
    let notified = Follow::new().file(&path, &buf);
    let expected = if cfg!(any(target_os = "linux", target_os = "android")) {
        Watching::Notifications
    } else {
        Watching::Polling
    };
    assert_eq!(notified.watching(), expected);
    let polled = Follow::new().polling(true).file(&path, &buf);
    assert_eq!(polled.watching(), Watching::Polling);
}

#[test]
fn announce_notes_truncation_and_replacement_in_the_log() {
    let dir = Dir::new("announce");
    let path = dir.file("app.log");
    append(&path, "");
    let buf = LogBuffer::new();
    let (live, follower) = start(&buf, &path, Follow::new().announce(true).prefix("app: "));
    append(&path, "a longer first line\n");
    assert_eq!(next(&live, 1), ["app: a longer first line\n"]);
    truncate(&path);
    // Shorter than what was read: a truncation written back past the old length before the
    // follower looks would look like an append, to memtail as to `tail -F`.
    append(&path, "two\n");
    assert_eq!(
        next(&live, 2),
        ["app: memtail: file truncated\n", "app: two\n"]
    );
    fs::rename(&path, dir.file("app.log.1")).unwrap();
    append(&path, "three\n");
    assert_eq!(
        next(&live, 2),
        [
            "app: memtail: file replaced, following the new file\n",
            "app: three\n"
        ]
    );
    let stats = follower.stop(STOP_WAIT);
    assert_eq!((stats.truncations, stats.rotations), (1, 1));
    // Notices are not lines of the file.
    assert_eq!(stats.lines, 3);
    nothing_more(&live);
}

#[cfg(unix)]
#[test]
fn a_fifo_is_read_as_a_stream_from_one_writer_to_the_next() {
    let dir = Dir::new("fifo");
    let path = dir.file("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let buf = LogBuffer::new();
    // No writer: following starts at once all the same.
    let (live, follower) = start(&buf, &path, Follow::new());
    for round in 0..2 {
        let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
        writeln!(writer, "round {round}, first").unwrap();
        writeln!(writer, "round {round}, second").unwrap();
        drop(writer);
        assert_eq!(
            next(&live, 2),
            [
                format!("round {round}, first\n"),
                format!("round {round}, second\n")
            ]
        );
    }
    // Stopping does not wait for a writer either.
    let stats = follower.stop(STOP_WAIT);
    assert_eq!((stats.lines, stats.truncations, stats.errors), (4, 0, 0));
    nothing_more(&live);
}

/// Fails the whole test binary if `stop` hangs, rather than hanging CI.
fn stop_within(follower: Follower, limit: Duration) -> memtail::follow::FollowStats {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if finished.recv_timeout(limit).is_err() {
            eprintln!("the follower did not stop within {limit:?}");
            std::process::abort();
        }
    });
    let stats = follower.stop(STOP_WAIT);
    let _ = done.send(());
    stats
}

#[cfg(target_os = "linux")]
#[test]
fn a_stream_that_never_ends_is_read_in_bounded_pieces_and_stops() {
    // /dev/zero: a character device, read as a stream, that always has more.
    let buf = LogBuffer::with_capacity(4096);
    let follower = Follow::new().file("/dev/zero", &buf);
    assert!(follower.wait_ready(DEADLINE));
    let deadline = std::time::Instant::now() + DEADLINE;
    while follower.stats().bytes_read < 1 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            follower.stats()
        );
        std::thread::yield_now();
    }
    let stats = stop_within(follower, DEADLINE);
    // A line without end, cut to the capacity: nothing held beyond it.
    assert!(stats.bytes_cut > 0, "{stats:?}");
    assert_eq!(stats.errors, 0, "{stats:?}");
}

#[test]
fn a_directory_at_the_path_is_an_error_not_a_file() {
    let dir = Dir::new("dir-at-path");
    let path = dir.file("app.log");
    fs::create_dir(&path).unwrap();
    let buf = LogBuffer::new();
    let follower = Follow::new().announce(true).file(&path, &buf);
    assert!(follower.wait_ready(DEADLINE));
    let error = follower.last_error().expect("an error");
    assert!(error.to_string().contains("directory"), "{error}");
    let stats = stop_within(follower, DEADLINE);
    assert_eq!((stats.rotations, stats.lines), (0, 0), "{stats:?}");
    assert!(buf.is_empty(), "no notice of a replaced file");
}

/// Whether the test clock below holds whoever asks it for the time, and whether it was asked.
static HOLD: std::sync::Mutex<(bool, bool)> = std::sync::Mutex::new((false, false));
static HELD: std::sync::Condvar = std::sync::Condvar::new();

/// A buffer clock that blocks while `HOLD` says so: a follower that records times is stuck in
/// its append until it is let go.
fn holding_clock() -> Duration {
    let mut hold = HOLD.lock().unwrap();
    hold.1 = true;
    HELD.notify_all();
    while hold.0 {
        hold = HELD.wait(hold).unwrap();
    }
    Duration::from_secs(1_700_000_000)
}

#[test]
fn dropping_a_follower_whose_thread_is_stuck_returns_after_its_bound() {
    let dir = Dir::new("stuck-drop");
    let path = dir.file("app.log");
    append(&path, "");
    let buf = LogBuffer::builder().clock(holding_clock).build();
    *HOLD.lock().unwrap() = (true, false);
    let follower = Follow::new().times(true).file(&path, &buf);
    assert!(follower.wait_ready(DEADLINE));
    append(&path, "a line whose time is asked for\n");
    {
        let hold = HOLD.lock().unwrap();
        let (hold, waited) = HELD
            .wait_timeout_while(hold, DEADLINE, |hold| !hold.1)
            .unwrap();
        assert!(
            !waited.timed_out() && hold.1,
            "the follower never asked the clock"
        );
    }
    // The follower's thread is stuck in the clock now: dropping the follower gives up on it.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(follower);
        done_tx.send(()).unwrap();
    });
    let returned = done_rx.recv_timeout(Follower::DROP_WAIT + DEADLINE);
    // Let the thread go, whatever happened, so that it ends with the test; it appends its line
    // then (the clock is asked before the entry goes in).
    let live = buf.events();
    HOLD.lock().unwrap().0 = false;
    HELD.notify_all();
    assert!(returned.is_ok(), "dropping a stuck follower did not return");
    let entry = live.recv_timeout(DEADLINE).expect("the line, once let go");
    assert_eq!(&entry[..], b"a line whose time is asked for\n");
}
