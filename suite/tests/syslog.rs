//! `SyslogPublisher` against a real rsyslog daemon on loopback: messages arrive whole and in order
//! over TCP, UDP and RELP, with their time; over TCP the publisher rides out a daemon restart with
//! exact accounting; over RELP every entry arrives through two SIGKILLs; on a local socket the
//! traditional format puts app-name, procid and message in the right fields.
//!
//! Needs `rsyslogd` on the PATH (Debian's `rsyslog`; `.ci/run` installs it) or named by
//! `MEMTAIL_RSYSLOGD`, and for RELP its `imrelp` module (Debian's `rsyslog-relp`). Without them
//! the tests are reported as ignored, with the reason, unless `MEMTAIL_REQUIRE_RSYSLOG` is set
//! (as in CI): then they fail.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memtail::publish::{PublisherBuilder, PublisherHandle, PublisherStats, SyslogPublisher};
use memtail::LogBuffer;
use memtail_suite::process::Process;
use memtail_suite::{need_program, system_test, Missing};

fn main() {
    memtail_suite::run(vec![
        system_test(
            "rsyslog_stores_every_message_intact_over_tcp_and_udp",
            rsyslogd,
            rsyslog_stores_every_message_intact_over_tcp_and_udp,
        ),
        system_test(
            "tcp_publishing_survives_a_daemon_restart_with_exact_accounting",
            rsyslogd,
            tcp_publishing_survives_a_daemon_restart_with_exact_accounting,
        ),
        system_test(
            "relp_delivers_every_entry_through_two_sigkills_of_the_daemon",
            rsyslogd_with_relp,
            relp_delivers_every_entry_through_two_sigkills_of_the_daemon,
        ),
        system_test(
            "a_local_socket_gets_app_name_procid_and_message_in_their_fields",
            rsyslogd,
            a_local_socket_gets_app_name_procid_and_message_in_their_fields,
        ),
        system_test(
            "one_long_entry_over_tcp_is_one_record_and_forges_none",
            rsyslogd,
            one_long_entry_over_tcp_is_one_record_and_forges_none,
        ),
    ]);
}

/// An entry of 250 KB carrying a forged syslog header after a newline, then 100 ordinary ones,
/// to rsyslog's `imtcp` with its defaults: past its 200 000-byte frame limit it reads the rest of
/// the connection as newline-framed, so the forged header would become a record of its own and
/// swallow the ones after. Cut to `max_message_size`, the entry stays one record.
fn one_long_entry_over_tcp_is_one_record_and_forges_none(binary: PathBuf) {
    let daemon = Rsyslog::start(&binary, "long");
    let buf = LogBuffer::with_capacity(1 << 20);
    let handle = publisher(
        &buf,
        SyslogPublisher::tcp(("127.0.0.1", daemon.tcp_port)).unwrap(),
    )
    .start();
    let mut long = "x".repeat(200_000);
    long.push_str("\n<9>1 2026-12-04T10:00:00Z FORGEDHOST forgedapp 666 - - INJECTED");
    long.push_str(&"y".repeat(50_000));
    buf.append(long.as_bytes());
    for n in 0..100 {
        buf.append(format!("after {n}\n").as_bytes());
    }
    wait_for("every record in rsyslog's file", || {
        daemon.messages("tcp.log").len() >= 101
    });
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!((stats.delivered, stats.cut), (101, 1), "{stats:?}");
    let stored = daemon.messages("tcp.log");
    assert_eq!(stored.len(), 101, "no record more than the entries");
    assert!(stored
        .iter()
        .all(|record| record.header == "14 testhost memtail-test 42"));
    assert!(
        !stored.iter().any(|record| record.msg.contains("INJECTED")),
        "the forged header is not stored"
    );
    assert!(stored[0].msg.starts_with("xxxx"));
    let after: Vec<&str> = stored[1..]
        .iter()
        .map(|record| record.msg.as_str())
        .collect();
    let expected: Vec<String> = (0..100).map(|n| format!("after {n}")).collect();
    assert_eq!(after, expected);
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rsyslogd() -> Result<PathBuf, Missing> {
    need_program(
        "rsyslogd",
        "MEMTAIL_RSYSLOGD",
        "apt-get install rsyslog",
        "MEMTAIL_REQUIRE_RSYSLOG",
    )
}

/// rsyslogd with its `imrelp` module.
fn rsyslogd_with_relp() -> Result<PathBuf, Missing> {
    let binary = rsyslogd()?;
    // A configuration check that loads the module: it fails when the module is not installed.
    let dir = std::env::temp_dir().join(format!("memtail-imrelp-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("check.conf");
    std::fs::write(
        &config,
        format!(
            "module(load=\"imrelp\")\naction(type=\"omfile\" file=\"{}/x.log\")\n",
            dir.display()
        ),
    )
    .unwrap();
    let loads = Command::new(&binary)
        .arg("-N1")
        .arg("-f")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let _ = std::fs::remove_dir_all(&dir);
    if loads {
        Ok(binary)
    } else {
        Err(Missing {
            reason: "rsyslog's imrelp module does not load: apt-get install rsyslog-relp".into(),
            require: "MEMTAIL_REQUIRE_RSYSLOG",
        })
    }
}

/// A port nothing listens on now.
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An rsyslog daemon in the foreground, listening on loopback (TCP, UDP, and RELP when asked) and
/// on private Unix sockets (`log.sock` as `/dev/log` would be, `log5424.sock` configured for RFC
/// 5424 messages), writing each message's time (as rsyslog understood the
/// TIMESTAMP, in Unix seconds), PRI, header fields and JSON-escaped MSG as one line per message
/// into `tcp.log`, `udp.log`, `relp.log` or `unix.log`.
///
/// The main queue is direct: rsyslog writes a message to its file before it acknowledges it over
/// RELP, so what it acknowledged survives a SIGKILL.
struct Rsyslog {
    dir: PathBuf,
    daemon: Option<Process>,
    tcp_port: u16,
    udp_port: u16,
    relp_port: Option<u16>,
}

impl Rsyslog {
    fn start(binary: &Path, name: &str) -> Rsyslog {
        Rsyslog::start_with(binary, name, false)
    }

    fn start_with(binary: &Path, name: &str, relp: bool) -> Rsyslog {
        let dir =
            std::env::temp_dir().join(format!("memtail-rsyslog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let udp_port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut daemon = Rsyslog {
            dir,
            daemon: None,
            tcp_port: 0,
            udp_port,
            relp_port: relp.then(free_tcp_port),
        };
        daemon.run(binary);
        daemon
    }

    /// Starts the daemon: on a port of its choosing the first time, on the same port after that.
    fn run(&mut self, binary: &Path) {
        let dir = self.dir.display();
        let port_file = self.dir.join("tcp.port");
        let _ = std::fs::remove_file(&port_file);
        let relp = match self.relp_port {
            Some(port) => format!(
                r#"module(load="imrelp")
ruleset(name="relp") {{ action(type="omfile" file="{dir}/relp.log" template="line") }}
input(type="imrelp" address="127.0.0.1" port="{port}" ruleset="relp")
"#
            ),
            None => String::new(),
        };
        let config = format!(
            r#"global(workDirectory="{dir}" parser.escapeControlCharactersOnReceive="off")
main_queue(queue.type="Direct")
module(load="imtcp")
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
template(name="line" type="string" string="%timereported:::date-unixtimestamp% %pri% %hostname% %app-name% %procid% %msg:::json%\n")
ruleset(name="tcp") {{ action(type="omfile" file="{dir}/tcp.log" template="line") }}
ruleset(name="udp") {{ action(type="omfile" file="{dir}/udp.log" template="line") }}
ruleset(name="unix") {{ action(type="omfile" file="{dir}/unix.log" template="line") }}
input(type="imtcp" address="127.0.0.1" port="{tcp}" listenPortFileName="{port_file}" ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp")
input(type="imuxsock" Socket="{dir}/log.sock" ruleset="unix" RateLimit.Interval="0" useSysTimeStamp="off")
input(type="imuxsock" Socket="{dir}/log5424.sock" ruleset="unix" RateLimit.Interval="0" useSysTimeStamp="off" useSpecialParser="off" parseHostname="on")
{relp}"#,
            tcp = self.tcp_port,
            udp = self.udp_port,
            port_file = port_file.display(),
        );
        let config_path = self.dir.join("rsyslog.conf");
        std::fs::write(&config_path, config).unwrap();
        let daemon = Process::spawn(
            Command::new(binary)
                .arg("-n")
                .arg("-f")
                .arg(&config_path)
                .arg("-i")
                .arg(self.dir.join("rsyslog.pid"))
                .stdin(Stdio::null()),
        );
        self.daemon = Some(daemon);
        if self.tcp_port == 0 {
            // rsyslog writes the port it chose into the port file once it listens.
            wait_for("rsyslog's TCP port", || {
                std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|port| port.trim().parse::<u16>().ok())
                    .is_some_and(|port| {
                        self.tcp_port = port;
                        true
                    })
            });
        } else {
            // On a given port it writes no port file: look for the listening socket instead.
            wait_for_listener(self.tcp_port);
        }
        if let Some(port) = self.relp_port {
            wait_for_listener(port);
        }
        for socket in ["log.sock", "log5424.sock"] {
            let socket = self.dir.join(socket);
            wait_for("rsyslog's Unix sockets", || socket.exists());
        }
        let udp = format!(":{:04X} ", self.udp_port);
        wait_for("rsyslog's UDP socket", || {
            std::fs::read_to_string("/proc/net/udp").is_ok_and(|table| table.contains(&udp))
        });
    }

    /// Stops the daemon with SIGTERM, as an init system would, and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.terminate(Duration::from_secs(30));
        }
    }

    /// Kills the daemon with SIGKILL, as a crash would, without letting it run a moment more:
    /// it is stopped first, so that it reads nothing the publisher sends meanwhile.
    fn freeze(&mut self) -> Frozen<'_> {
        let daemon = self.daemon.as_ref().expect("the daemon runs");
        signal(daemon.id(), "STOP");
        Frozen(self)
    }

    /// The messages stored so far in `file`.
    fn messages(&self, file: &str) -> Vec<Stored> {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        text.lines()
            .map(|line| {
                let mut fields = line.splitn(6, ' ');
                let time = fields.next().unwrap().parse().unwrap();
                let header: Vec<&str> = fields.by_ref().take(4).collect();
                Stored {
                    time,
                    header: header.join(" "),
                    msg: unescape_json(fields.next().unwrap_or("")),
                }
            })
            .collect()
    }
}

/// A daemon stopped with SIGSTOP: it takes no more bytes from its sockets.
struct Frozen<'a>(&'a mut Rsyslog);

impl Frozen<'_> {
    /// Whether a client has sent the daemon bytes it has not read, on a connection to `port`.
    fn has_unread_bytes_on(&self, port: u16) -> bool {
        let local = format!("0100007F:{port:04X}");
        std::fs::read_to_string("/proc/net/tcp").is_ok_and(|table| {
            table.lines().skip(1).any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // local_address, rem_address, st, tx_queue:rx_queue
                fields.len() > 4
                    && fields[1] == local
                    && fields[3] == "01"
                    && fields[4]
                        .split_once(':')
                        .is_some_and(|(_, unread)| u64::from_str_radix(unread, 16) != Ok(0))
            })
        })
    }

    /// SIGKILL (the guard's drop), and the process is reaped.
    fn kill(self) {
        self.0.daemon = None;
    }
}

/// A message as rsyslog stored it.
#[derive(Debug)]
struct Stored {
    /// The message's TIMESTAMP as rsyslog read it, in Unix seconds.
    time: u64,
    /// PRI, HOSTNAME, APP-NAME and PROCID.
    header: String,
    msg: String,
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

fn wait_for_listener(port: u16) {
    let listening = format!(":{port:04X} 00000000:0000 0A");
    wait_for("rsyslog's TCP listener", || {
        std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| t.contains(&listening))
    });
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        // The daemon's guard kills it first.
        self.daemon = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Undoes rsyslog's JSON string escaping.
fn unescape_json(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn sample_entries() -> Vec<String> {
    let mut entries: Vec<String> = vec![
        "plain line".into(),
        "a tab\there and\ttwo".into(),
        "UTF-8: grüße, ünïcödé, 日本語, ✓".into(),
        "an embedded\nnewline, then more".into(),
        "  leading and trailing spaces  ".into(),
        "quotes \" and backslashes \\ and {braces}".into(),
    ];
    entries.extend((0..24).map(|i| format!("request {i} path=/items/{} status=200", i * 7)));
    entries
}

/// A publisher to the daemon with the test's header fields, a short interval and quick retries
/// that never give up on an entry.
fn publisher(buf: &LogBuffer, syslog: SyslogPublisher) -> PublisherBuilder<SyslogPublisher> {
    buf.publisher(
        syslog
            .hostname("testhost")
            .app_name("memtail-test")
            .procid("42"),
    )
    .interval(Duration::from_millis(5))
    .backoff(Duration::from_millis(5), Duration::from_millis(50))
    .max_attempts(u32::MAX)
}

fn check_delivery(
    daemon: &Rsyslog,
    file: &str,
    handle: PublisherHandle,
    sent: &[String],
    written_from: u64,
) {
    wait_for("every message in rsyslog's file", || {
        daemon.messages(file).len() >= sent.len()
    });
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(stats.delivered, sent.len() as u64, "{stats:?}");
    let stored = daemon.messages(file);
    let messages: Vec<&str> = stored.iter().map(|m| m.msg.as_str()).collect();
    assert_eq!(messages, sent, "all messages, in order, intact");
    let now = unix_seconds();
    for message in &stored {
        // user.info = 1 * 8 + 6
        assert_eq!(message.header, "14 testhost memtail-test 42");
        // The TIMESTAMP is the time the entry was taken, not "-" (which rsyslog would replace by
        // the time it received the message, just as close to now).
        assert!(
            (written_from..=now).contains(&message.time),
            "{message:?} was not stamped between {written_from} and {now}"
        );
    }
}

fn rsyslog_stores_every_message_intact_over_tcp_and_udp(binary: PathBuf) {
    let daemon = Rsyslog::start(&binary, "intact");
    let sent = sample_entries();

    let transports = [
        (
            SyslogPublisher::tcp(("127.0.0.1", daemon.tcp_port)).unwrap(),
            "tcp.log",
        ),
        (
            SyslogPublisher::udp(("127.0.0.1", daemon.udp_port)).unwrap(),
            "udp.log",
        ),
    ];
    for (syslog, file) in transports {
        let buf = LogBuffer::new();
        let handle = publisher(&buf, syslog).start();
        let written_from = unix_seconds();
        for entry in &sent {
            buf.append(format!("{entry}\n").as_bytes());
        }
        check_delivery(&daemon, file, handle, &sent, written_from);
    }
}

fn tcp_publishing_survives_a_daemon_restart_with_exact_accounting(binary: PathBuf) {
    let mut daemon = Rsyslog::start(&binary, "restart");
    let buf = LogBuffer::new();
    let syslog = SyslogPublisher::tcp(("127.0.0.1", daemon.tcp_port)).unwrap();
    let handle = publisher(&buf, syslog).queue(10).start();
    let stats = |handle: &PublisherHandle| -> PublisherStats { handle.stats() };

    // Phase 1: the daemon is up.
    for i in 0..10 {
        buf.append(format!("before {i}\n").as_bytes());
    }
    wait_for("phase 1 delivered", || stats(&handle).delivered == 10);
    wait_for("phase 1 stored", || daemon.messages("tcp.log").len() == 10);

    // Phase 2: the daemon is down; three bursts of 10 overflow the queue of 10.
    daemon.stop();
    for burst in 0..3 {
        for i in 0..10 {
            buf.append(format!("while down {burst}.{i}\n").as_bytes());
        }
        let taken = 10 + (burst + 1) * 10;
        wait_for("the burst queued", || stats(&handle).received == taken);
    }
    wait_for("a failed attempt", || stats(&handle).failed_attempts > 0);
    let down = stats(&handle);
    assert_eq!(down.delivered, 10);
    assert_eq!(down.dropped_queue_full, 20);
    assert_eq!(down.queued, 10);

    // Phase 3: the daemon is back on the same port; what fit in the queue arrives.
    daemon.run(&binary);
    wait_for("the queue delivered", || stats(&handle).delivered == 20);
    let final_stats = handle.stop(Duration::from_secs(10));
    wait_for("phase 3 stored", || daemon.messages("tcp.log").len() >= 20);

    let stored: Vec<String> = daemon
        .messages("tcp.log")
        .into_iter()
        .map(|m| m.msg)
        .collect();
    let mut expected: Vec<String> = (0..10).map(|i| format!("before {i}")).collect();
    expected.extend((0..10).map(|i| format!("while down 2.{i}")));
    assert_eq!(stored, expected, "nothing lost that fit, nothing repeated");
    assert_eq!(final_stats.delivered + final_stats.dropped(), 40);
    assert_eq!(final_stats.dropped_queue_full, 20);
    assert_eq!(final_stats.dropped_upstream, 0);
    assert!(final_stats.failed_attempts > 0);
}

/// The goal of RELP: 10 000 entries while the daemon is killed with SIGKILL twice (each time with
/// frames sent that it had not read) and restarted. Every entry arrives at least once, in order
/// within each session; delivered is 10 000; each kill makes the publisher send again at most one
/// window of entries, and the stats count them.
fn relp_delivers_every_entry_through_two_sigkills_of_the_daemon(binary: PathBuf) {
    const ENTRIES: usize = 10_000;
    const WINDOW: usize = SyslogPublisher::DEFAULT_WINDOW;
    let mut daemon = Rsyslog::start_with(&binary, "relp", true);
    let port = daemon.relp_port.unwrap();
    let buf = LogBuffer::with_capacity(4 << 20);
    let syslog = SyslogPublisher::relp(("127.0.0.1", port))
        .unwrap()
        // Long enough that a frozen daemon is killed before the attempt times out.
        .write_timeout(Duration::from_secs(120));
    let owned = publisher(&buf, syslog).queue(ENTRIES).start();
    let handle = &owned;
    let delivered = |n: usize| move || handle.stats().delivered == n as u64;
    let write = |range: std::ops::Range<usize>| {
        for i in range {
            buf.append(format!("entry {i:05}\n").as_bytes());
        }
    };

    write(0..3000);
    wait_for("the first 3000 acknowledged", delivered(3000));
    for (kill, range) in [(1, 3000..6500), (2, 6500..ENTRIES)] {
        let frozen = daemon.freeze();
        write(range.clone());
        wait_for("frames the frozen daemon has not read", || {
            frozen.has_unread_bytes_on(port)
        });
        frozen.kill();
        assert!(
            handle.stats().delivered < range.end as u64,
            "kill {kill}: entries were in flight"
        );
        daemon.run(&binary);
        wait_for(
            "everything written so far acknowledged",
            delivered(range.end),
        );
    }
    let stats = owned.stop(Duration::from_secs(30));
    daemon.stop();

    assert_eq!(stats.delivered, ENTRIES as u64, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert!(stats.failed_attempts >= 2, "{stats:?}");
    assert!(
        (1..=2 * WINDOW as u64).contains(&stats.resent),
        "re-sent at most a window per kill: {stats:?}"
    );
    let stored = daemon.messages("relp.log");
    let numbers: Vec<usize> = stored
        .iter()
        .map(|m| {
            assert_eq!(m.header, "14 testhost memtail-test 42", "{m:?}");
            m.msg.strip_prefix("entry ").unwrap().parse().unwrap()
        })
        .collect();
    // At least once: the first time each number appears, they are in order, and all there.
    let mut seen = vec![false; ENTRIES];
    let mut first_times = Vec::with_capacity(ENTRIES);
    for &n in &numbers {
        if !std::mem::replace(&mut seen[n], true) {
            first_times.push(n);
        }
    }
    assert_eq!(
        first_times,
        (0..ENTRIES).collect::<Vec<_>>(),
        "every entry, in order"
    );
    // Duplicates are what was sent again, no more; a session re-sends from where the daemon's
    // acknowledgements stopped, so the numbers go back at most once per kill.
    let duplicates = numbers.len() - ENTRIES;
    assert!(
        duplicates as u64 <= stats.resent,
        "{duplicates} duplicates, {stats:?}"
    );
    let back_steps = numbers.windows(2).filter(|w| w[1] <= w[0]).count();
    assert!(back_steps <= 2, "{back_steps} steps back in {numbers:?}");
    println!(
        "relp: delivered {}, re-sent {}, duplicates stored {duplicates}, failed attempts {}",
        stats.delivered, stats.resent, stats.failed_attempts
    );
}

/// `SyslogPublisher::unix` speaks the traditional format to rsyslog's `imuxsock` as it is
/// configured for `/dev/log`: APP-NAME, PROCID and MSG land in their fields. RFC 5424 on request
/// does as well, to a socket whose `imuxsock` uses the regular parsers (`useSpecialParser="off"`).
fn a_local_socket_gets_app_name_procid_and_message_in_their_fields(binary: PathBuf) {
    let daemon = Rsyslog::start(&binary, "unix");
    let sent = sample_entries();
    let formats = [
        memtail::publish::SyslogFormat::Rfc3164,
        memtail::publish::SyslogFormat::Rfc5424,
    ];
    for (round, format) in formats.into_iter().enumerate() {
        let socket = daemon.dir.join(["log.sock", "log5424.sock"][round]);
        let buf = LogBuffer::new();
        let syslog = SyslogPublisher::unix(&socket)
            .unwrap()
            .format(format)
            .app_name("memtail-test")
            .procid("42");
        let handle = publisher(&buf, syslog).start();
        for entry in &sent {
            buf.append(format!("{entry}\n").as_bytes());
        }
        let expected = sent.len() * (round + 1);
        wait_for("every message in rsyslog's file", || {
            daemon.messages("unix.log").len() >= expected
        });
        let stats = handle.stop(Duration::from_secs(10));
        assert_eq!(stats.delivered, sent.len() as u64, "{stats:?}");
    }
    let stored = daemon.messages("unix.log");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for (i, message) in stored.iter().enumerate() {
        let (format, entry) = (formats[i / sent.len()], &sent[i % sent.len()]);
        // A local message has no HOSTNAME: rsyslog fills in its own. RFC 3164's MSG keeps the
        // space after `TAG:` in rsyslog's `msg` property.
        let (host, msg) = match format {
            memtail::publish::SyslogFormat::Rfc3164 => (
                host.trim(),
                message.msg.strip_prefix(' ').expect("a space before MSG"),
            ),
            _ => ("testhost", message.msg.as_str()),
        };
        assert_eq!(
            message.header,
            format!("14 {host} memtail-test 42"),
            "{format:?}"
        );
        assert_eq!(msg, entry, "{format:?}");
    }
}
