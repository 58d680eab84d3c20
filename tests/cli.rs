//! The `memtail` command end to end: `memtail serve` on a temporary file, read over plain HTTP
//! (a raw SSE client on a `TcpStream`, no library in between) and with `memtail tail`.
//!
//! Every process a test starts is a [`Process`] guard, killed and reaped however the test ends,
//! and every test runs under a deadline ([`with_deadline`]).

#[path = "support/process.rs"]
mod process;

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use process::{with_deadline, Process};

/// How long any single wait may take.
const DEADLINE: Duration = Duration::from_secs(30);
/// How long a whole test may take.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
const MEMTAIL: &str = env!("CARGO_BIN_EXE_memtail");

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("memtail-cli-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Lines read from a child process's standard output or from a socket, by a thread of their own.
struct Lines {
    lines: mpsc::Receiver<String>,
    _process: Option<Process>,
}

impl Lines {
    fn read(from: impl Read + Send + 'static, process: Option<Process>) -> Lines {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            lines,
            _process: process,
        }
    }

    /// Starts `command` and reads its standard output.
    fn start(command: &mut Command) -> Lines {
        let mut process = Process::spawn(command.stdout(Stdio::piped()).stderr(Stdio::inherit()));
        let stdout = process.stdout().unwrap();
        Lines::read(stdout, Some(process))
    }

    /// The next line, without the time `memtail serve` gives every line of a file (see
    /// [`untimed`]); fails after the deadline.
    fn line(&self) -> String {
        untimed(&self.timed_line())
    }

    /// The next line as it came; fails after the deadline.
    fn timed_line(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("a line within the deadline")
    }

    /// Lines until `n` for which `keep` holds, skipping the others; returns the kept ones.
    fn lines_where(&self, n: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut kept = Vec::new();
        while kept.len() < n {
            let line = self.line();
            if keep(&line) {
                kept.push(line);
            }
        }
        kept
    }
}

/// A time as `memtail::render` writes it (`2026-12-04T18:42:44.539659Z`) and a space, at the
/// start of `text`: what follows it.
fn after_time(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    if bytes.len() < 28 || bytes[26] != b'Z' || bytes[27] != b' ' {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.dddddd";
    let fits = shape.iter().zip(bytes).all(|(&want, &got)| match want {
        b'd' => got.is_ascii_digit(),
        _ => got == want,
    });
    fits.then(|| &text[28..])
}

/// A line without the time `memtail serve` now gives each line it reads (and `memtail tail`
/// and `/snapshot` show), at its start or after `memtail tail`'s label: these tests are about
/// the text.
fn untimed(line: &str) -> String {
    if let Some(rest) = after_time(line) {
        return rest.to_owned();
    }
    match line.split_once(' ') {
        Some((label, rest)) if after_time(rest).is_some() => {
            format!("{label} {}", after_time(rest).unwrap())
        }
        _ => line.to_owned(),
    }
}

/// Each line of `text` [`untimed`], each still ended as it was.
fn untimed_text(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(line) => untimed(line) + "\n",
            None => untimed(line),
        })
        .collect()
}

/// `memtail serve ARGS --listen 127.0.0.1:0` and the address it printed.
fn serve(args: &[&str]) -> (Lines, String) {
    let server = Lines::start(
        Command::new(MEMTAIL)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null()),
    );
    let url = served_url(&server.line());
    (server, url)
}

/// The address in `memtail serve`'s first line.
fn served_url(first: &str) -> String {
    let url = first
        .strip_prefix("memtail: serving ")
        .unwrap_or_else(|| panic!("the serving line, not {first:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    assert!(!url.ends_with(":0/"), "the real port: {url}");
    url
}

fn append(path: &PathBuf, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Runs `memtail ARGS` to its end, like `Command::output`, but guarded and bounded.
fn run(args: &[&str]) -> std::process::Output {
    let mut process = Process::spawn(
        Command::new(MEMTAIL)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let read_all = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(process.stdout().unwrap()));
    let stderr = read_all(Box::new(process.stderr().unwrap()));
    let status = process.wait(DEADLINE);
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Sends `GET` for `url` as HTTP/1.0 (so the body is neither chunked nor kept alive: it ends when
/// the server closes) and returns the connection positioned at the start of the body, after
/// checking the status is 200.
fn get(url: &str) -> BufReader<TcpStream> {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(
        status.starts_with("HTTP/1.") && status.contains(" 200 "),
        "{status:?}"
    );
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim_end().is_empty() {
            return reader;
        }
    }
}

/// Follows the SSE stream at `url`, line by line.
fn follow(url: &str) -> Lines {
    Lines::read(get(url), None)
}

/// Fetches `url` until its body satisfies `done`; a bounded poll.
fn get_until(url: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut text = String::new();
        get(url).read_to_string(&mut text).unwrap();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "never got it: {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_a_file_and_read_it_over_http_and_with_memtail_tail() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("serve");
        let log = dir.0.join("app.log");
        append(&log, "before memtail started\n");
        let (_server, url) = serve(&[log.to_str().unwrap()]);
        let sse = follow(&format!("{url}events"));
        let tail = Lines::start(Command::new(MEMTAIL).args(["tail", &url]));
        // The server started with the file's last lines (10 by default, as `tail`), so tail prints
        // that first.
        assert_eq!(tail.line(), "before memtail started");
        // Both followers are connected once the server reports two subscribers... which it does not
        // expose; instead, lines are appended until the first one shows up at both.
        let deadline = std::time::Instant::now() + DEADLINE;
        let mut n = 0;
        let first_seen = loop {
            append(&log, &format!("probe {n}\n"));
            if let Ok(line) = tail.lines.recv_timeout(Duration::from_millis(200)) {
                break untimed(&line);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "memtail tail printed nothing"
            );
            n += 1;
        };
        assert!(first_seen.starts_with("probe "), "{first_seen}");
        let last_probe = n;
        append(&log, "plain line\n");
        append(&log, "\x1b]0;pwned\x07 and \x1b[31mred\x1b[0m\n");
        append(&log, "no newline yet");
        append(&log, ", now done\n");

        // memtail tail: the probes it has not printed yet, then the lines, escaped; colours
        // removed, since its output is not a terminal.
        let printed = tail.lines_where(3, |line| !line.starts_with("probe "));
        assert_eq!(
            printed,
            [
                "plain line",
                "\\x1b]0;pwned\\x07 and red",
                "no newline yet, now done",
            ]
        );

        // The raw SSE stream: the same entries as events (among heartbeats, whose data is a
        // number).
        let data = sse.lines_where(4, |line| {
            line.strip_prefix("data: ").is_some_and(|data| {
                !data.starts_with("probe ") && !data.bytes().all(|b| b.is_ascii_digit())
            })
        });
        assert_eq!(data[0], "data: before memtail started");
        assert_eq!(data[1], "data: plain line");
        assert_eq!(data[2], "data: \x1b]0;pwned\x07 and \x1b[31mred\x1b[0m");
        assert_eq!(data[3], "data: no newline yet, now done");
        assert!(last_probe < 10_000);

        // The snapshot has every line once, in order.
        let snapshot = get_until(&format!("{url}snapshot"), |text| {
            text.ends_with("now done\n")
        });
        let snapshot = untimed_text(&snapshot);
        let probes: Vec<_> = snapshot
            .lines()
            .filter(|l| l.starts_with("probe "))
            .collect();
        assert_eq!(probes.len(), last_probe + 1);
        assert_eq!(snapshot.matches("before memtail started").count(), 1);
    });
}

#[test]
fn raw_output_and_missed_entries() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("missed");
        let log = dir.0.join("app.log");
        append(&log, "");
        // 64 bytes of memory: most of the 50 lines below are evicted before anyone reads them.
        let (_server, url) = serve(&[log.to_str().unwrap(), "--capacity", "64"]);
        for n in 0..50 {
            append(&log, &format!("line {n:02}\n"));
        }
        append(&log, "\x1b[1mbold\x1b[0m\n");
        get_until(&format!("{url}snapshot"), |text| text.contains("bold"));
        let tail =
            Lines::start(Command::new(MEMTAIL).args(["tail", &url, "--since", "0", "--raw"]));
        let missed = tail.line();
        let n: u64 = missed
            .strip_prefix("-- ")
            .and_then(|rest| rest.strip_suffix(" entries missed --"))
            .unwrap_or_else(|| panic!("a missed notice, not {missed:?}"))
            .parse()
            .unwrap();
        let mut rest = Vec::new();
        loop {
            let line = tail.line();
            let done = line.contains("bold");
            rest.push(line);
            if done {
                break;
            }
        }
        assert_eq!(
            n + rest.len() as u64,
            51,
            "every line printed or counted: {rest:?}"
        );
        assert_eq!(
            rest.last().unwrap(),
            "\x1b[1mbold\x1b[0m",
            "--raw prints escapes as they are"
        );
    });
}

#[test]
fn several_files_are_prefixed_with_their_names() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("several");
        let (a, b) = (dir.0.join("a.log"), dir.0.join("b.log"));
        append(&a, "");
        let (_server, url) = serve(&[a.to_str().unwrap(), b.to_str().unwrap()]);
        append(&a, "from a\n");
        append(&b, "from b\n");
        let snapshot = get_until(&format!("{url}snapshot"), |text| text.lines().count() == 2);
        let snapshot = untimed_text(&snapshot);
        let mut lines: Vec<_> = snapshot.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                format!("{}: from a", a.display()),
                format!("{}: from b", b.display())
            ]
        );
    });
}

#[test]
fn stdin_is_followed_when_no_file_is_given() {
    with_deadline(TEST_DEADLINE, || {
        let mut server = Process::spawn(
            Command::new(MEMTAIL)
                .args(["serve", "--listen", "127.0.0.1:0"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let mut stdin = server.stdin().unwrap();
        let output = Lines::read(server.stdout().unwrap(), None);
        let url = served_url(&output.line());
        stdin.write_all(b"piped in\n").unwrap();
        stdin.flush().unwrap();
        let snapshot = get_until(&format!("{url}snapshot"), |text| !text.is_empty());
        assert_eq!(untimed_text(&snapshot), "piped in\n");
        // The end of its input does not end the server: it goes on serving what it has.
        drop(stdin);
        assert_eq!(
            untimed_text(&get_until(&format!("{url}snapshot"), |_| true)),
            "piped in\n"
        );
        assert!(server.try_wait().is_none(), "still serving");
    });
}

#[test]
fn bad_arguments_give_one_line_and_exit_code_2() {
    with_deadline(TEST_DEADLINE, || {
        for args in [
            &["serve", "--bogus"][..],
            &["serve", "--capacity", "lots"],
            &["serve", "--capacity", "0"],
            &["tail"],
            &["tail", "not a url"],
            &["tail", "ftp://example.com/"],
            &["tail", "http://127.0.0.1:1/", "--color", "sometimes"],
            &["serve", "--listen", "nonsense"],
            &["serve", "--listen", "127.0.0.1:99999"],
            &["serve", "--lines", "-1"],
            &["serve", "-", "-"],
        ] {
            let output = run(args);
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.starts_with("memtail: "), "{stderr}");
        }
        let help = run(&["--help"]);
        assert!(help.status.success());
        assert!(String::from_utf8(help.stdout).unwrap().contains("serve"));
    });
}

#[test]
fn an_unreadable_file_is_named_in_a_clear_message() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("unreadable");
        let output = run(&["serve", dir.0.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(dir.0.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains("directory"), "{stderr}");
        assert!(output.stdout.is_empty(), "nothing served");
    });
}

#[test]
fn memtail_tail_says_the_log_started_over_when_the_server_restarts() {
    with_deadline(TEST_DEADLINE, || {
        // The new server has fewer entries than the old one, then more.
        for (old_lines, new_lines) in [(20, 7), (5, 20)] {
            let dir = Dir::new(&format!("restart-{old_lines}"));
            let (old_log, new_log) = (dir.0.join("old.log"), dir.0.join("new.log"));
            append(&old_log, "");
            append(&new_log, "");
            let (old_server, url) = serve(&[old_log.to_str().unwrap()]);
            let tail = Lines::start(Command::new(MEMTAIL).args(["tail", &url]));
            // Probes until tail follows, then the old log.
            let deadline = Instant::now() + DEADLINE;
            loop {
                append(&old_log, "probe\n");
                if tail.lines.recv_timeout(Duration::from_millis(200)).is_ok() {
                    break;
                }
                assert!(Instant::now() < deadline, "memtail tail printed nothing");
            }
            for n in 1..=old_lines {
                append(&old_log, &format!("old-{n}\n"));
            }
            let printed = tail.lines_where(old_lines, |line| line.starts_with("old-"));
            assert_eq!(printed.last().unwrap(), &format!("old-{old_lines}"));

            // The server restarts on the same address, following another file.
            drop(old_server);
            let listen = url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            let new_server = Lines::start(
                Command::new(MEMTAIL)
                    .args(["serve", new_log.to_str().unwrap(), "--listen", &listen])
                    .stdin(Stdio::null()),
            );
            assert_eq!(served_url(&new_server.line()), url);
            for n in 1..=new_lines {
                append(&new_log, &format!("new-{n}\n"));
            }
            // tail says once that the server went, reconnects on its own, says the log started
            // over, then prints every new line, none lost.
            let rest = tail.lines_where(new_lines + 2, |line| !line.starts_with("probe"));
            assert_eq!(rest[0], "-- server closed; reconnecting --", "{rest:?}");
            assert_eq!(rest[1], "-- the log started over --", "{rest:?}");
            let expected: Vec<String> = (1..=new_lines).map(|n| format!("new-{n}")).collect();
            assert_eq!(rest[2..], expected[..]);
        }
    });
}

#[test]
fn lines_counts_like_tail_n_and_defaults_to_ten() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("lines");
        let partial = dir.0.join("partial.log");
        append(&partial, "a\nb\nc");
        // `tail -n 1` on a file without a final newline prints `c`.
        let (_one, url) = serve(&[partial.to_str().unwrap(), "--lines", "1"]);
        let snapshot = get_until(&format!("{url}snapshot"), |text| !text.is_empty());
        // The unfinished line is an entry of its own, shown with its time as a line.
        assert_eq!(untimed_text(&snapshot), "c\n");

        let many = dir.0.join("many.log");
        let text: String = (1..=15).map(|n| format!("line {n}\n")).collect();
        append(&many, &text);
        let (_ten, url) = serve(&[many.to_str().unwrap()]);
        let snapshot = get_until(&format!("{url}snapshot"), |text| !text.is_empty());
        let expected: String = (6..=15).map(|n| format!("line {n}\n")).collect();
        assert_eq!(untimed_text(&snapshot), expected);
    });
}

#[cfg(unix)]
#[test]
fn a_fifo_is_served_without_waiting_for_a_writer_and_read_as_it_comes() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("fifo");
        let fifo = dir.0.join("pipe");
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // No writer yet: the server still says where it serves.
        let (_server, url) = serve(&[fifo.to_str().unwrap()]);
        for round in 0..2 {
            // A writer comes, writes and goes; then another.
            let mut writer = OpenOptions::new().write(true).open(&fifo).unwrap();
            writeln!(writer, "through the pipe {round}").unwrap();
            drop(writer);
            let want = format!("through the pipe {round}\n");
            get_until(&format!("{url}snapshot"), |text| text.ends_with(&want));
        }
        let snapshot = get_until(&format!("{url}snapshot"), |_| true);
        assert_eq!(
            untimed_text(&snapshot),
            "through the pipe 0\nthrough the pipe 1\n"
        );
    });
}

#[test]
fn a_truncation_is_noted_in_the_log() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("truncated");
        let log = dir.0.join("app.log");
        append(&log, "");
        let (_server, url) = serve(&[log.to_str().unwrap()]);
        append(&log, "a long first line\n");
        get_until(&format!("{url}snapshot"), |text| text.contains("first"));
        OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&log, "after\n");
        let snapshot = get_until(&format!("{url}snapshot"), |text| text.contains("after"));
        assert_eq!(
            untimed_text(&snapshot),
            "a long first line\nmemtail: file truncated\nafter\n"
        );
    });
}

/// `memtail tail ARGS` with its standard output and error read line by line.
fn tail_process(args: &[&str], envs: &[(&str, &str)]) -> (Lines, Lines) {
    let mut process = Process::spawn(
        Command::new(MEMTAIL)
            .arg("tail")
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stderr = Lines::read(process.stderr().unwrap(), None);
    let stdout = process.stdout().unwrap();
    (Lines::read(stdout, Some(process)), stderr)
}

#[test]
fn tail_shows_colours_when_asked_and_a_bare_cr_as_backslash_r() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("colours");
        let log = dir.0.join("app.log");
        append(&log, "\x1b[2m12:00\x1b[0m \x1b[32m INFO\x1b[0m ready\n");
        append(&log, "progress 10%\rprogress 90%\n");
        append(&log, "\x1b[2Jcleared?\n");
        let (_server, url) = serve(&[log.to_str().unwrap()]);
        for (color, first) in [
            (
                "always",
                "\x1b[2m12:00\x1b[0m \x1b[32m INFO\x1b[0m ready\x1b[0m",
            ),
            ("never", "12:00  INFO ready"),
            // Not a terminal.
            ("auto", "12:00  INFO ready"),
        ] {
            let (out, _err) = tail_process(&[&url, "--color", color], &[]);
            assert_eq!(out.line(), first, "--color {color}");
            assert_eq!(out.line(), "progress 10%\\rprogress 90%");
            assert_eq!(out.line(), "\\x1b[2Jcleared?");
        }
    });
}

#[test]
fn tail_merges_several_servers_with_a_label_each() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("merge");
        let (a, b) = (dir.0.join("a.log"), dir.0.join("b.log"));
        append(&a, "from a\n");
        append(&b, "from b\n");
        let (_sa, url_a) = serve(&[a.to_str().unwrap()]);
        let (_sb, url_b) = serve(&[b.to_str().unwrap()]);
        let label = |url: &str| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned()
        };
        let (out, _err) = tail_process(&[&url_a, &url_b], &[]);
        let mut lines = vec![out.line(), out.line()];
        lines.sort();
        let mut expected = vec![
            format!("{} from a", label(&url_a)),
            format!("{} from b", label(&url_b)),
        ];
        expected.sort();
        assert_eq!(lines, expected);
        // Live lines too, as they arrive.
        append(&b, "later from b\n");
        assert_eq!(out.line(), format!("{} later from b", label(&url_b)));
    });
}

#[test]
fn tail_fails_at_once_when_the_first_connection_fails_unless_it_retries() {
    with_deadline(TEST_DEADLINE, || {
        // Nothing listens on port 1.
        let output = run(&["tail", "http://127.0.0.1:1/"]);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
        assert!(stderr.contains("--retry"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");

        let (_out, err) = tail_process(&["http://127.0.0.1:1/", "--retry"], &[]);
        // It says it tries again, and does; once every few seconds at most, however often it
        // tries.
        for _ in 0..2 {
            let said = err.line();
            assert!(
                said.contains("127.0.0.1:1") && said.ends_with("; retrying"),
                "{said}"
            );
        }
    });
}

#[test]
fn tail_takes_the_token_from_the_environment_and_never_prints_it() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("token");
        let log = dir.0.join("app.log");
        append(&log, "secret line\n");
        let (_server, url) = serve(&[log.to_str().unwrap(), "--token", "s3cret-token"]);
        let (out, _err) = tail_process(&[&url], &[("MEMTAIL_TOKEN", "s3cret-token")]);
        assert_eq!(out.line(), "secret line");

        // A wrong token in the URL: refused, and the token is not repeated.
        let wrong = format!("{url}?token=wrong-token-value");
        let output = run(&["tail", &wrong]);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("401"), "{stderr}");
        assert!(!stderr.contains("wrong-token-value"), "{stderr}");
        // Nor does the help show the variable's value.
        let mut help = Process::spawn(
            Command::new(MEMTAIL)
                .args(["tail", "--help"])
                .env("MEMTAIL_TOKEN", "s3cret-token")
                .stdout(Stdio::piped()),
        );
        let mut text = String::new();
        help.stdout().unwrap().read_to_string(&mut text).unwrap();
        assert!(text.contains("MEMTAIL_TOKEN"), "{text}");
        assert!(!text.contains("s3cret-token"), "{text}");
    });
}

#[test]
fn tail_reconnects_when_a_connection_goes_silent() {
    with_deadline(TEST_DEADLINE, || {
        // A server that answers, says its heartbeats come every 100 ms, then says nothing more
        // and keeps the connection open: a dead connection that never closes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n\
                      event: heartbeat\ndata: 100\n\n",
                );
                held.push(stream);
            }
        });
        let (out, _err) = tail_process(&[&url], &[]);
        let said = out.line();
        assert!(said.starts_with("-- nothing heard for"), "{said}");
        assert!(said.ends_with("; reconnecting --"), "{said}");
    });
}

#[test]
fn tail_shows_each_entry_after_its_time_and_coloured_by_its_level() {
    use tracing_subscriber::layer::SubscriberExt;
    with_deadline(TEST_DEADLINE, || {
        // A program's own log, through memtail's layer: times and levels, no escapes.
        let buf = memtail::LogBuffer::new();
        let subscriber = tracing_subscriber::registry().with(buf.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "app", "failed");
            tracing::warn!(target: "app", "slow");
            tracing::info!(target: "app", "ok");
            tracing::debug!(target: "app", "detail");
        });
        buf.append(b"2026-12-04 10:00:00 plain, with a time of its own\n");
        let times: Vec<String> = buf
            .entries()
            .iter()
            .filter_map(|entry| entry.time())
            .map(|time| memtail::render::time(time).to_string())
            .collect();
        let server = memtail::http::Config::new()
            .spawn(buf, "127.0.0.1:0")
            .unwrap();
        let url = format!("http://{}/", server.local_addr());
        let (out, _err) = tail_process(&[&url, "--color", "always"], &[]);
        assert_eq!(
            out.timed_line(),
            format!("\x1b[31m{} ERROR app: failed\x1b[0m", times[0])
        );
        assert_eq!(
            out.timed_line(),
            format!("\x1b[33m{} WARN  app: slow\x1b[0m", times[1])
        );
        assert_eq!(out.timed_line(), format!("{} INFO  app: ok", times[2]));
        assert_eq!(
            out.timed_line(),
            format!("\x1b[2m{} DEBUG app: detail\x1b[0m", times[3])
        );
        assert_eq!(
            out.timed_line(),
            "2026-12-04 10:00:00 plain, with a time of its own"
        );
        let (out, _err) = tail_process(&[&url, "--color", "never"], &[]);
        assert_eq!(out.timed_line(), format!("{} ERROR app: failed", times[0]));
        assert!(server.stop(DEADLINE));
    });
}

#[test]
fn file_names_on_stderr_cannot_drive_the_terminal() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("hostile-name");
        let hostile = dir.0.join("\x1b]0;pwned\x07\x1b[2Japp.log");
        let mut process = Process::spawn(
            Command::new(MEMTAIL)
                .arg("serve")
                .arg(&hostile)
                .args(["--listen", "127.0.0.1:0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let stderr = Lines::read(process.stderr().unwrap(), Some(process));
        let said = stderr.line();
        assert!(
            said.ends_with("does not exist yet; waiting for it"),
            "{said:?}"
        );
        assert!(
            said.contains("\\x1b]0;pwned\\x07\\x1b[2Japp.log"),
            "{said:?}"
        );
        assert!(!said.contains('\x1b') && !said.contains('\x07'), "{said:?}");
    });
}

/// This process's resident memory, from `/proc/PID/status`.
fn rss_of(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap()
        * 1024
}

#[test]
fn tail_stays_bounded_against_a_server_sending_one_endless_line() {
    with_deadline(TEST_DEADLINE, || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (sent, all_sent) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            let mut request = [0; 4096];
            let _ = client.read(&mut request);
            client
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                      connection: close\r\n\r\nid: 1\ndata: ",
                )
                .unwrap();
            // 200 MB of one line, in pieces, with no line break.
            let piece = vec![b'x'; 1 << 20];
            for _ in 0..200 {
                if client.write_all(&piece).is_err() {
                    return;
                }
            }
            client.write_all(b"\n\nid: 2\ndata: after\n\n").unwrap();
            let _ = sent.send(());
            // Keep the connection open until the test ends.
            let _ = client.read(&mut request);
        });
        let mut process = Process::spawn(
            Command::new(MEMTAIL)
                .args(["tail", &format!("http://{address}/"), "--color", "never"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let pid = process.id();
        let out = Lines::read(process.stdout().unwrap(), Some(process));
        all_sent.recv_timeout(Duration::from_secs(60)).unwrap();
        let first = out.line();
        assert!(
            first.starts_with("xxxxxxxx"),
            "{}",
            &first[..first.len().min(80)]
        );
        assert_eq!(first.len(), (1 << 20) - "data: ".len());
        assert_eq!(
            out.line(),
            "-- the entry above was cut: longer than memtail tail keeps --"
        );
        assert_eq!(out.line(), "after");
        let rss = rss_of(pid);
        assert!(rss < 64 << 20, "memtail tail holds {rss} bytes");
    });
}

/// A line of each common format, and whether `?level=warn` keeps it (WARN or more severe).
const FORMATS: &[(&str, bool)] = &[
    (
        "2026-12-04T14:39:53.123456Z  INFO my_app: listening on 8080",
        false,
    ),
    (
        "2026-12-04T14:39:53.123456Z ERROR my_app: payment failed",
        true,
    ),
    ("[2026-12-04T14:39:53Z WARN  my_app] retrying", true),
    (
        "2026-12-04 14:39:53,123 ERROR [exec-1] c.e.Controller - request failed",
        true,
    ),
    ("\tat com.example.App.main(App.java:42)", false),
    ("WARNING:root:disk almost full", true),
    ("2026-12-04 14:39:53,123 - my_app - DEBUG - detail", false),
    (
        "2026/12/04 14:39:53 [error] 1234#0: *5 connect() failed",
        true,
    ),
    ("time=2026-12-04T14:39:53.123Z level=WARN msg=slow", true),
    (
        "{\"time\":\"2026-12-04T14:39:53.123Z\",\"level\":\"INFO\",\"msg\":\"ok\"}",
        false,
    ),
    ("E1204 14:39:53.123456       1 pod.go:42] sync failed", true),
    ("I1204 14:39:53.123456       1 server.go:42] serving", false),
    (
        "<11>1 2026-12-04T14:39:53Z host app 42 - - disk failed",
        true,
    ),
    ("a line with no level at all", false),
];

#[test]
fn a_served_file_s_lines_have_levels_times_and_their_file_as_target() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("levels");
        let (app, db) = (dir.0.join("app.log"), dir.0.join("db.log"));
        let text: String = FORMATS
            .iter()
            .map(|(line, _)| format!("{line}\n"))
            .collect();
        append(&app, &text);
        append(&db, "ERROR db: replica lagging\nINFO db: vacuum done\n");
        let (_server, url) = serve(&[
            app.to_str().unwrap(),
            db.to_str().unwrap(),
            "--lines",
            "100",
            "--no-prefix",
            "--label",
            "app",
            "--label",
            "db",
        ]);
        let all = FORMATS.len() + 2;
        // Every line has the time it was read: the last five minutes are all of them.
        let recent = get_until(&format!("{url}snapshot?last=5m"), |text| {
            text.lines().count() == all
        });
        assert_eq!(recent.lines().count(), all, "{recent}");
        // Levels, from the text of each format.
        let mut warn: Vec<String> = untimed_text(&get_until(
            &format!("{url}snapshot?level=warn&target=app"),
            |_| true,
        ))
        .lines()
        .map(str::to_owned)
        .collect();
        warn.sort();
        let mut expected: Vec<String> = FORMATS
            .iter()
            .filter(|(_, kept)| *kept)
            .map(|(line, _)| untimed(line))
            .collect();
        expected.sort();
        assert_eq!(warn, expected);
        // Each file is a target of its own, by its label.
        let db_errors = get_until(&format!("{url}snapshot?level=error&target=db"), |_| true);
        assert_eq!(untimed_text(&db_errors), "ERROR db: replica lagging\n");
    });
}

/// `memtail tail ARGS`'s standard output without times, and whether it exited 0.
fn tail_once(args: &[&str]) -> (Vec<String>, std::process::Output) {
    let mut all = vec!["tail"];
    all.extend_from_slice(args);
    let output = run(&all);
    let lines = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(untimed)
        .collect();
    (lines, output)
}

#[test]
fn tail_no_follow_prints_what_the_filters_keep_and_exits() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("no-follow");
        let log = dir.0.join("app.log");
        append(
            &log,
            "INFO alpha starting\nWARN bravo slow\nERROR charlie failed\nINFO delta done\n\
             DEBUG echo detail\n",
        );
        let (_server, url) = serve(&[log.to_str().unwrap(), "--lines", "100"]);
        get_until(&format!("{url}snapshot"), |text| text.lines().count() == 5);
        let cases: [(&[&str], &[&str]); 5] = [
            (&["-n", "2"], &["INFO delta done", "DEBUG echo detail"]),
            (&["--level", "error"], &["ERROR charlie failed"]),
            (
                &["--grep", "alpha|charlie"],
                &["INFO alpha starting", "ERROR charlie failed"],
            ),
            (
                &["--since", "5m", "--exclude", "(?i)info|debug"],
                &["WARN bravo slow", "ERROR charlie failed"],
            ),
            (&["--level", "WARN", "-n", "1"], &["ERROR charlie failed"]),
        ];
        for (args, expected) in cases {
            let mut all = vec!["--no-follow"];
            all.extend_from_slice(args);
            all.push(&url);
            let (lines, output) = tail_once(&all);
            assert!(output.status.success(), "{args:?}: {output:?}");
            assert_eq!(lines, expected, "{args:?}");
        }
        // JSON: one object per line, every field named, `null` for none.
        let (lines, output) = tail_once(&["--no-follow", "-o", "json", "-n", "1", &url]);
        assert!(output.status.success(), "{output:?}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        let object = &lines[0];
        assert!(object.starts_with("{\"seq\":4,\"time\":\"20"), "{object}");
        assert!(
            object.ends_with(
                "\"level\":\"DEBUG\",\"target\":\"app.log\",\"text\":\"DEBUG echo detail\"}"
            ),
            "{object}"
        );
        // Mistakes are said before connecting, in one line, with exit code 2.
        for args in [
            &["--grep", "(unclosed"][..],
            &["--since", "yesterday"],
            &["--level", "loud"],
        ] {
            let mut all = vec!["--no-follow"];
            all.extend_from_slice(args);
            all.push(&url);
            let (lines, output) = tail_once(&all);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
            assert!(lines.is_empty());
            let said = String::from_utf8_lossy(&output.stderr).into_owned();
            assert_eq!(said.lines().count(), 1, "{args:?}: {said}");
        }
    });
}

#[test]
fn tail_follows_with_the_server_filtering_and_says_calmly_when_the_server_goes() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("filtered-follow");
        let log = dir.0.join("app.log");
        append(&log, "ERROR first failure\nINFO fine\n");
        let (server, url) = serve(&[log.to_str().unwrap(), "--lines", "100"]);
        get_until(&format!("{url}snapshot"), |text| text.lines().count() == 2);
        let (out, _err) = tail_process(&["-n", "1", "--level", "error", &url], &[]);
        assert_eq!(out.line(), "ERROR first failure");
        append(
            &log,
            "INFO not shown\nWARN not shown either\nERROR second failure\n",
        );
        assert_eq!(out.line(), "ERROR second failure");
        // The server goes away: one calm line, not the transport's words.
        drop(server);
        assert_eq!(out.line(), "-- server closed; reconnecting --");
    });
}

#[test]
fn serve_stops_gracefully_on_sigterm_and_sigint() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("signals");
        let log = dir.0.join("app.log");
        append(&log, "a line\n");
        for signal in ["TERM", "INT"] {
            let mut process = Process::spawn(
                Command::new(MEMTAIL)
                    .args(["serve", log.to_str().unwrap(), "--listen", "127.0.0.1:0"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped()),
            );
            let output = Lines::read(process.stdout().unwrap(), None);
            let url = served_url(&output.line());
            // The viewer's title names the file.
            let mut page = String::new();
            get(&url).read_to_string(&mut page).unwrap();
            assert!(
                page.contains("<title>app.log \u{b7} memtail</title>"),
                "{signal}"
            );
            let events = follow(&format!("{url}events"));
            let first = events.lines_where(1, |line| line.starts_with("data: a line"));
            assert_eq!(first.len(), 1);
            let asked = Instant::now();
            let status = Command::new("kill")
                .args([&format!("-{signal}"), &process.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            // The stream's last event says why; then the stream and the process end, cleanly.
            let said = events.lines_where(1, |line| {
                line.starts_with("event: ") && line != "event: heartbeat"
            });
            assert_eq!(said, ["event: shutdown"], "{signal}");
            let status = process.wait(DEADLINE);
            println!("SIG{signal}: exited {status} after {:?}", asked.elapsed());
            assert!(status.success(), "SIG{signal}: {status}");
        }
    });
}

/// Reads an event stream until a line containing `marker`; the bytes read.
fn bytes_until(mut stream: BufReader<TcpStream>, marker: &str) -> usize {
    let mut total = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let n = stream.read_line(&mut line).unwrap();
        assert!(n > 0, "the stream ended before {marker:?}");
        total += n;
        if line.contains(marker) {
            return total;
        }
    }
}

#[test]
fn a_filtered_follow_moves_a_small_share_of_the_bytes() {
    with_deadline(TEST_DEADLINE, || {
        let dir = Dir::new("filtered-bytes");
        let log = dir.0.join("app.log");
        append(&log, "");
        let (_server, url) = serve(&[log.to_str().unwrap(), "--capacity", "16MiB"]);
        // Both followers are in place before the lines come (n=0: nothing of the backlog).
        let all = get(&format!("{url}events?format=json&n=0"));
        let errors = get(&format!("{url}events?format=json&n=0&level=error"));
        // 20 000 lines, 1% errors, written in blocks of 200 as a busy service would.
        for block in 0..100 {
            let text: String = (0..200)
                .map(|n| {
                    let level = if n == 0 { "ERROR" } else { "INFO " };
                    format!("2026-12-04T14:39:53.123456Z {level} my_app::handler: request {block}-{n} done in 3 ms\n")
                })
                .collect();
            append(&log, &text);
        }
        append(
            &log,
            "2026-12-04T14:39:53.123456Z ERROR my_app: done marker\n",
        );
        let (all, errors) = (
            bytes_until(all, "done marker"),
            bytes_until(errors, "done marker"),
        );
        let share = errors as f64 / all as f64;
        println!(
            "filtered follow: {errors} bytes, unfiltered: {all} bytes ({:.2}%)",
            share * 100.0
        );
        assert!(share <= 0.05, "{errors} of {all} bytes");
    });
}

/// The id of the user running the tests.
fn user_id() -> String {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A file that cannot be read for a while (permissions) is read once it can be, from its start,
/// and is not counted as a file that came and went: here the file a rotation puts at the path
/// is made unreadable at first. As root, which reads any file, the server runs as `nobody`
/// (through util-linux's `setpriv`).
#[test]
fn a_file_unreadable_for_a_while_is_read_once_it_can_be_and_not_counted_missed() {
    with_deadline(TEST_DEADLINE, || {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new("unreadable-for-a-while");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
        let log = dir.0.join("app.log");
        append(&log, "");
        fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
        let mut command = if user_id() == "0" {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups", MEMTAIL]);
            command
        } else {
            Command::new(MEMTAIL)
        };
        let mut process = Process::spawn(
            command
                .args(["serve", log.to_str().unwrap(), "--listen", "127.0.0.1:0"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let output = Lines::read(process.stdout().unwrap(), None);
        let errors = Lines::read(process.stderr().unwrap(), None);
        let _server = process;
        let url = served_url(&output.line());
        append(&log, "before the rotation\n");
        get_until(&format!("{url}snapshot"), |text| {
            text.contains("before the rotation")
        });
        // Rotated; the new file cannot be read at first.
        fs::rename(&log, dir.0.join("app.log.1")).unwrap();
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Unreadable from the moment it is there: the follower cannot have opened it.
            let mut file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .mode(0o000)
                .open(&log)
                .unwrap();
            file.write_all(b"written while unreadable\n").unwrap();
        }
        append(&log, "still unreadable\n");
        // The server says it cannot read it (it keeps trying): only then is it made readable.
        let said = errors.line();
        assert!(said.contains("Permission denied"), "{said}");
        fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
        append(&log, "written once readable\n");
        // Found at the next look (within the reconcile interval), read from its start.
        let snapshot = get_until(&format!("{url}snapshot"), |text| {
            text.contains("written once readable")
        });
        let lines: Vec<String> = untimed_text(&snapshot).lines().map(str::to_owned).collect();
        assert_eq!(
            lines,
            [
                "before the rotation",
                "memtail: file replaced, following the new file",
                "written while unreadable",
                "still unreadable",
                "written once readable",
            ],
            "no line lost, and no \"came and went\" notice"
        );
    });
}
