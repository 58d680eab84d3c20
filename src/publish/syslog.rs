//! Syslog messages (RFC 5424 or RFC 3164) over UDP, TCP (RFC 6587 octet counting), RELP or a
//! Unix datagram socket.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::publisher::{PublishError, Publisher};
use super::relp::{Outcome, Patience, Session};
use super::writer::write_counted;
use crate::entry::without_line_end;
use crate::{Entry, Level};

/// How long connecting to a TCP syslog daemon may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long sending one batch to a TCP syslog daemon may take before the attempt counts as
/// failed, however the bytes trickle: a daemon that accepts but never reads fails the attempt
/// within this, and the publisher retries with backoff.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends each entry as one syslog message.
///
/// Over the network the message is RFC 5424's `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`,
/// where MSG is the entry with its trailing newline (`\n` or `\r\n`) removed and every other byte
/// kept: tabs, UTF-8 and embedded newlines travel as they are. There is no byte-order mark before
/// MSG. TIMESTAMP is the time the publisher took the entry from the buffer ([`Entry::time`]), in
/// UTC with microseconds (`2026-11-23T10:59:16.123456Z`), so an entry that is retried keeps the
/// time it was logged (to within the publisher's interval), not the time it finally arrived.
///
/// To a local Unix socket ([`unix`](SyslogPublisher::unix)) the message is in the traditional
/// format that local daemons expect, laid out as the C library's `syslog()` writes it:
/// `<PRI>Mmm dd hh:mm:ss APP-NAME[PROCID]: MSG` (RFC 3164, with no HOSTNAME on a local socket).
/// [`format`](SyslogPublisher::format) chooses the other format on any transport. RFC 3164 has
/// no time zone: its TIMESTAMP is in UTC (rsyslog's `imuxsock` and journald stamp local messages
/// with their own clock by default anyway).
///
/// The severity is the entry's [`Level`] when it came from a `tracing` event (feature `tracing`):
/// `ERROR` → error, `WARN` → warning, `INFO` → informational, `DEBUG` and `TRACE` → debug; other
/// entries get [`severity`](SyslogPublisher::severity) (informational by default).
///
/// Transports, and what "delivered" means for each (the README's "Publishing" section has the
/// table):
/// - [`relp`](SyslogPublisher::relp): RELP, rsyslog's Reliable Event Logging Protocol. An entry
///   is delivered when the daemon has acknowledged it. After a broken connection the entries not
///   acknowledged are sent again (at least once: the daemon may have kept some of them, and
///   [`PublisherStats::resent`](crate::publish::PublisherStats::resent) counts them).
/// - [`tcp`](SyslogPublisher::tcp): octet-counted framing (RFC 6587), so embedded newlines are
///   safe. Delivered means handed to the kernel: plain TCP has no acknowledgement, so messages
///   in flight when the daemon goes away can be lost without a trace. The connection is made on
///   first use and made again after the daemon restarts: before each batch the publisher checks
///   that the daemon has not closed the connection, and a failed write reconnects on the next try.
/// - [`udp`](SyslogPublisher::udp): one datagram per message. Delivered means handed to the
///   kernel; UDP cannot tell whether the daemon got it. A message larger than a datagram can
///   never be sent: it is dropped at once, counted as `dropped_permanent`.
/// - [`unix`](SyslogPublisher::unix): one datagram per message to a Unix socket such as
///   `/dev/log`. Delivered means the daemon's socket took it (a full socket makes the attempt
///   fail and retry).
///
/// Daemons may alter what they store: rsyslog, for one, escapes control characters (a newline
/// becomes `#012`) unless `parser.escapeControlCharactersOnReceive` is off, and cuts messages
/// longer than its `maxMessageSize` (8 KiB by default, less some bytes of its own), or splits
/// them into several records: the default [`max_message_size`](SyslogPublisher::max_message_size)
/// here, 8 000 bytes, stays within it, so that one entry is one record.
///
/// # Examples
///
/// ```no_run
/// use memtail::publish::{Facility, SyslogPublisher};
///
/// let buf = memtail::LogBuffer::new();
/// let syslog = SyslogPublisher::tcp("127.0.0.1:514")?
///     .facility(Facility::Local3)
///     .app_name("billing");
/// let handle = buf.publish(syslog);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SyslogPublisher {
    transport: Transport,
    format: SyslogFormat,
    facility: Facility,
    severity: Severity,
    hostname: String,
    app_name: String,
    procid: String,
    write_timeout: Duration,
    window: usize,
    max_message_size: usize,
    /// Entries cut to `max_message_size` so far, and the last one counted (a batch that is
    /// retried is formatted again: each entry is counted once).
    cut: u64,
    cut_upto: Option<u64>,
    /// What follows TIMESTAMP up to MSG: ` HOSTNAME APP-NAME PROCID - - ` (RFC 5424) or
    /// ` [HOSTNAME ]TAG[PROCID]: ` (RFC 3164).
    header: String,
    /// The last TIMESTAMP formatted: entries taken together share a time.
    stamp: Option<(SystemTime, String)>,
    scratch: Vec<u8>,
    ends: Vec<usize>,
    relp: RelpState,
}

/// What a RELP publisher remembers between batches.
#[derive(Default)]
struct RelpState {
    /// The first sequence number of the last batch.
    head: Option<u64>,
    /// Entries the daemon acknowledged while one before them was not: not sent again.
    acked_ahead: BTreeSet<u64>,
    /// The highest sequence number sent so far: one at or below it is sent again.
    sent_upto: Option<u64>,
    /// Entries sent more than once.
    resent: u64,
}

/// The syslog message format: see [`SyslogPublisher::format`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyslogFormat {
    /// The traditional BSD format, laid out as the C library's `syslog()` writes it (but with
    /// the time in UTC): `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PROCID]: MSG`, without HOSTNAME on a
    /// Unix socket. The default for [`SyslogPublisher::unix`].
    Rfc3164,
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`. The default over the network.
    Rfc5424,
}

enum Transport {
    Udp(UdpSocket),
    Tcp {
        addrs: Vec<SocketAddr>,
        stream: Option<TcpStream>,
    },
    Relp {
        addrs: Vec<SocketAddr>,
        session: Option<Session>,
    },
    #[cfg(unix)]
    Unix {
        path: PathBuf,
        socket: Option<UnixDatagram>,
    },
}

impl SyslogPublisher {
    /// Messages over UDP to `addr`, from an ephemeral local port.
    ///
    /// # Errors
    ///
    /// When `addr` does not resolve, or no local socket can be bound to reach it.
    pub fn udp(addr: impl ToSocketAddrs) -> io::Result<SyslogPublisher> {
        let addr = resolve(addr)?[0];
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(addr)?;
        Ok(SyslogPublisher::with_transport(Transport::Udp(socket)))
    }

    /// Messages over TCP to `addr` with octet-counted framing (RFC 6587). The connection is made
    /// when the first batch is published, and again whenever it was lost.
    ///
    /// # Errors
    ///
    /// When `addr` does not resolve.
    pub fn tcp(addr: impl ToSocketAddrs) -> io::Result<SyslogPublisher> {
        let addrs = resolve(addr)?;
        Ok(SyslogPublisher::with_transport(Transport::Tcp {
            addrs,
            stream: None,
        }))
    }

    /// Messages over RELP, rsyslog's Reliable Event Logging Protocol, to `addr` (rsyslog's
    /// `imrelp`; port 2514 or 20514 by custom). An entry counts as delivered when the daemon has
    /// acknowledged it.
    ///
    /// The session is opened when the first batch is published. Each batch goes out as `syslog`
    /// frames, at most [`window`](SyslogPublisher::window) of them unacknowledged at a time (128
    /// by default, as in librelp), and the call returns once every frame is answered: the
    /// entries up to the first one not acknowledged are delivered. A frame the daemon refuses
    /// (`500`) is retried with backoff and dropped after `max_attempts`, counted; those after it
    /// that the daemon took are not sent again. When the session breaks (the daemon restarts,
    /// the network fails, or the daemon takes no bytes and completes no answer for the
    /// [`write_timeout`](SyslogPublisher::write_timeout)), a new one is opened on the next try
    /// and every entry not acknowledged is sent again: delivery is at least once, the daemon may
    /// have kept some of them before it went away, and
    /// [`PublisherStats::resent`](crate::publish::PublisherStats::resent) says how many were sent again
    /// (at most one window per broken session, plus refused entries retried).
    ///
    /// rsyslog's `imrelp` cuts a message longer than its `maxDataSize` (by default, with
    /// `oversizeMode="truncate"`) and acknowledges it: such an entry is delivered cut.
    ///
    /// # Errors
    ///
    /// When `addr` does not resolve.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use memtail::publish::SyslogPublisher;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let handle = buf.publish(SyslogPublisher::relp("127.0.0.1:2514")?.app_name("billing"));
    /// buf.append(b"acknowledged, or counted\n");
    /// let stats = handle.stop(Duration::from_secs(5));
    /// println!("delivered {}, sent twice {}", stats.delivered, stats.resent);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn relp(addr: impl ToSocketAddrs) -> io::Result<SyslogPublisher> {
        let addrs = resolve(addr)?;
        Ok(SyslogPublisher::with_transport(Transport::Relp {
            addrs,
            session: None,
        }))
    }

    /// Messages as datagrams to the Unix socket at `path` (for example `/dev/log`), in the
    /// traditional format local daemons expect ([`SyslogFormat::Rfc3164`], without HOSTNAME;
    /// [`format`](SyslogPublisher::format) chooses RFC 5424 instead). The socket is connected
    /// when the first batch is published, and again after a failure.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for checks at construction.
    #[cfg(unix)]
    pub fn unix(path: impl AsRef<Path>) -> io::Result<SyslogPublisher> {
        Ok(SyslogPublisher::with_transport(Transport::Unix {
            path: path.as_ref().to_path_buf(),
            socket: None,
        }))
    }

    fn with_transport(transport: Transport) -> SyslogPublisher {
        let app_name = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let format = match transport {
            #[cfg(unix)]
            Transport::Unix { .. } => SyslogFormat::Rfc3164,
            _ => SyslogFormat::Rfc5424,
        };
        let mut publisher = SyslogPublisher {
            transport,
            format,
            facility: Facility::User,
            severity: Severity::Informational,
            hostname: header_field(&local_hostname(), 255),
            app_name: header_field(&app_name, 48),
            procid: std::process::id().to_string(),
            write_timeout: SyslogPublisher::DEFAULT_WRITE_TIMEOUT,
            window: SyslogPublisher::DEFAULT_WINDOW,
            max_message_size: SyslogPublisher::DEFAULT_MAX_MESSAGE_SIZE,
            cut: 0,
            cut_upto: None,
            header: String::new(),
            stamp: None,
            scratch: Vec::new(),
            ends: Vec::new(),
            relp: RelpState::default(),
        };
        publisher.build_header();
        publisher
    }

    /// How long sending one batch over TCP or RELP may take by default.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = WRITE_TIMEOUT;

    /// The longest message sent by default, in bytes: 8 000, within what rsyslog takes in one
    /// piece by default (its `maxMessageSize`, 8 KiB, less some bytes of its own: rsyslog
    /// 8.2302 stored a message of 8 191 bytes as two records, the second with a header made of
    /// the first's text), and well below its `imtcp` frame limit (200 000 bytes, past which it reads the
    /// rest of the connection as newline-framed, so that a newline inside one entry would start
    /// a forged message of its own and swallow the ones after).
    pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8000;

    /// How many RELP frames may be unacknowledged at a time by default (as in librelp).
    pub const DEFAULT_WINDOW: usize = 128;

    /// How long sending one batch over TCP may take before the attempt counts as failed,
    /// however the bytes trickle; over RELP, how long the daemon may go without taking bytes or
    /// completing an answer (a slow daemon that keeps answering is not cut off; one that drips
    /// an answer a byte at a time is), counted from the connect
    /// ([`DEFAULT_WRITE_TIMEOUT`](SyslogPublisher::DEFAULT_WRITE_TIMEOUT), 10 s, by default). A
    /// daemon that accepts but never reads (or never answers) fails the attempt within it; the
    /// publisher counts it, retries with backoff, and its stats move on meanwhile. The
    /// connection is dropped after a failed attempt (a message may have been cut). UDP and Unix
    /// datagram sends do not block on a daemon.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    #[track_caller]
    pub fn write_timeout(mut self, timeout: Duration) -> SyslogPublisher {
        assert!(
            !timeout.is_zero(),
            "memtail::publish::SyslogPublisher::write_timeout: zero timeout"
        );
        self.write_timeout = timeout;
        self
    }

    /// How many RELP frames may be sent before the first of them is acknowledged
    /// ([`DEFAULT_WINDOW`](SyslogPublisher::DEFAULT_WINDOW), 128, by default). A larger window
    /// keeps a distant daemon busier; after a broken session up to this many entries are sent
    /// again. Other transports ignore it.
    ///
    /// # Panics
    ///
    /// If `window` is zero.
    #[track_caller]
    pub fn window(mut self, window: usize) -> SyslogPublisher {
        assert!(
            window > 0,
            "memtail::publish::SyslogPublisher::window: zero window"
        );
        self.window = window;
        self
    }

    /// The longest message sent, in bytes, header included
    /// ([`DEFAULT_MAX_MESSAGE_SIZE`](SyslogPublisher::DEFAULT_MAX_MESSAGE_SIZE), 8 000, by
    /// default), on every transport. A longer entry is cut to fit (at a character boundary),
    /// sent, and counted once in [`PublisherStats::cut`](crate::publish::PublisherStats::cut): one entry
    /// is always one message, never two, and never part of the next. Set it no higher than what
    /// the daemon takes in one piece (rsyslog: somewhat less than `global(maxMessageSize=...)`,
    /// 8 KiB by default, and below `imtcp`'s `MaxFrameSize`, 200 000; for UDP, a datagram, 65 507
    /// bytes at most), or the daemon may cut or split it itself.
    ///
    /// # Panics
    ///
    /// If `bytes` is below 480, the least RFC 5424 lets a receiver accept.
    ///
    /// # Examples
    ///
    /// ```
    /// let syslog = memtail::publish::SyslogPublisher::tcp("127.0.0.1:514")?.max_message_size(8192);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn max_message_size(mut self, bytes: usize) -> SyslogPublisher {
        assert!(
            bytes >= 480,
            "memtail::publish::SyslogPublisher::max_message_size: {bytes} is below 480 bytes"
        );
        self.max_message_size = bytes;
        self
    }

    /// The message format: [`SyslogFormat::Rfc5424`] by default, [`SyslogFormat::Rfc3164`] for
    /// [`unix`](SyslogPublisher::unix) sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::publish::{SyslogFormat, SyslogPublisher};
    ///
    /// // For a local rsyslog whose imuxsock has useSpecialParser="off".
    /// let syslog = SyslogPublisher::unix("/dev/log")?.format(SyslogFormat::Rfc5424);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn format(mut self, format: SyslogFormat) -> SyslogPublisher {
        self.format = format;
        self.build_header();
        self
    }

    /// The facility of every message. [`Facility::User`] by default.
    pub fn facility(mut self, facility: Facility) -> SyslogPublisher {
        self.facility = facility;
        self
    }

    /// The severity of entries that did not come from a `tracing` event.
    /// [`Severity::Informational`] by default.
    pub fn severity(mut self, severity: Severity) -> SyslogPublisher {
        self.severity = severity;
        self
    }

    /// The HOSTNAME field. By default the machine's host name. Characters outside printable
    /// ASCII become `_`; it is cut to 255 characters; an empty name becomes `-`.
    pub fn hostname(mut self, hostname: impl AsRef<str>) -> SyslogPublisher {
        self.hostname = header_field(hostname.as_ref(), 255);
        self.build_header();
        self
    }

    /// The APP-NAME field. By default the executable's name. Cleaned like the host name, and cut
    /// to 48 characters.
    pub fn app_name(mut self, app_name: impl AsRef<str>) -> SyslogPublisher {
        self.app_name = header_field(app_name.as_ref(), 48);
        self.build_header();
        self
    }

    /// The PROCID field. By default the process id. Cleaned like the host name, and cut to 128
    /// characters.
    pub fn procid(mut self, procid: impl AsRef<str>) -> SyslogPublisher {
        self.procid = header_field(procid.as_ref(), 128);
        self.build_header();
        self
    }

    fn build_header(&mut self) {
        self.stamp = None;
        self.header = match self.format {
            SyslogFormat::Rfc5424 => {
                format!(" {} {} {} - - ", self.hostname, self.app_name, self.procid)
            }
            SyslogFormat::Rfc3164 => {
                // The TAG ends at the first character that is not alphanumeric in RFC 3164;
                // daemons read up to `[` or `:`, so those become `_`.
                let clean = |field: &str| -> String {
                    field
                        .chars()
                        .map(|c| if matches!(c, '[' | ']' | ':') { '_' } else { c })
                        .collect()
                };
                let tag = clean(&self.app_name);
                let host = match self.transport {
                    #[cfg(unix)]
                    Transport::Unix { .. } => String::new(),
                    _ => format!("{} ", self.hostname),
                };
                match self.procid.as_str() {
                    "-" => format!(" {host}{tag}: "),
                    procid => format!(" {host}{tag}[{}]: ", clean(procid)),
                }
            }
        };
    }

    /// Appends the message for `entry` to `out`.
    fn message(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        let severity = entry.level().map_or(self.severity, Severity::from);
        let pri = self.facility as u8 * 8 + severity as u8;
        out.push(b'<');
        out.extend_from_slice(pri.to_string().as_bytes());
        out.push(b'>');
        if self.format == SyslogFormat::Rfc5424 {
            out.extend_from_slice(b"1 ");
        }
        let time = entry.time().unwrap_or_else(SystemTime::now);
        let format = self.format;
        let stamp = match &mut self.stamp {
            Some((at, text)) if *at == time => text,
            slot => &slot.insert((time, timestamp(time, format))).1,
        };
        out.extend_from_slice(stamp.as_bytes());
        out.extend_from_slice(self.header.as_bytes());
        out.extend_from_slice(without_line_end(entry));
        if out.len() > self.max_message_size {
            // At a character boundary: back over UTF-8 continuation bytes.
            let mut end = self.max_message_size;
            while end > 0 && out[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            out.truncate(end);
            if self.cut_upto.map_or(true, |upto| entry.seq() > upto) {
                self.cut += 1;
                self.cut_upto = Some(entry.seq());
            }
        }
    }

    /// Formats the batch into `scratch`, one message after the other (each with its octet count
    /// when `framed`), and records where each ends in `ends`.
    fn format_batch(&mut self, batch: &[Entry], framed: bool) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut ends = std::mem::take(&mut self.ends);
        let mut message = Vec::new();
        scratch.clear();
        ends.clear();
        for entry in batch {
            message.clear();
            self.message(entry, &mut message);
            if framed {
                scratch.extend_from_slice(format!("{} ", message.len()).as_bytes());
            }
            scratch.extend_from_slice(&message);
            ends.push(scratch.len());
        }
        self.scratch = scratch;
        self.ends = ends;
    }

    /// Publishes a formatted batch over RELP: see [`relp`](SyslogPublisher::relp).
    fn publish_relp(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        let Transport::Relp { addrs, session } = &mut self.transport else {
            unreachable!("publish_relp is called for RELP only");
        };
        let Some(head) = batch.first().map(Entry::seq) else {
            return Ok(0);
        };
        let patience = &mut Patience::without_progress(self.write_timeout);
        let state = &mut self.relp;
        if state.head.is_some_and(|last| head < last) {
            // Entries of another stream (not from the dispatcher): what was remembered is not
            // about them.
            *state = RelpState::default();
        }
        state.head = Some(head);
        // Acknowledgements of entries no longer offered are of no more use.
        state.acked_ahead = state.acked_ahead.split_off(&head);
        let mut outcomes: Vec<Outcome> = batch
            .iter()
            .map(|entry| match state.acked_ahead.contains(&entry.seq()) {
                true => Outcome::Acked,
                false => Outcome::Pending,
            })
            .collect();
        if outcomes.iter().all(|&outcome| outcome == Outcome::Acked) {
            return Ok(batch.len());
        }
        let (bytes, ends) = (&self.scratch, &self.ends);
        let messages = ends.iter().scan(0, |start, &end| {
            let message = &bytes[*start..end];
            *start = end;
            Some(message)
        });
        // A session the daemon ended while idle (a restart, `serverclose`) is replaced before
        // anything is sent on it.
        if session.as_mut().is_some_and(|open| !open.still_open()) {
            // Closed politely when it is only old; dropped when the daemon ended it.
            drop(session.take());
        }
        let result = match session {
            Some(open) => Ok(open),
            None => Session::open(addrs, CONNECT_TIMEOUT, patience).map(|new| session.insert(new)),
        }
        .and_then(|open| {
            open.exchange(messages, &mut outcomes, self.window, patience, |index| {
                let seq = batch[index].seq();
                if state.sent_upto.is_some_and(|upto| seq <= upto) {
                    state.resent += 1;
                } else {
                    state.sent_upto = Some(seq);
                }
            })
        });
        if result.is_err() {
            if let Some(broken) = session.take() {
                broken.abandon();
            }
        }
        let delivered = outcomes
            .iter()
            .take_while(|&&outcome| outcome == Outcome::Acked)
            .count();
        let mut refused = 0;
        for (entry, outcome) in batch.iter().zip(&outcomes).skip(delivered) {
            match outcome {
                Outcome::Acked => {
                    state.acked_ahead.insert(entry.seq());
                }
                Outcome::Refused => refused += 1,
                Outcome::Pending => {}
            }
        }
        match result {
            Err(error) => Err(PublishError::new(error).with_delivered(delivered)),
            Ok(()) if delivered < batch.len() => Err(PublishError::msg(format!(
                "the RELP server refused {refused} of {} messages",
                batch.len()
            ))
            .with_delivered(delivered)),
            Ok(()) => Ok(delivered),
        }
    }
}

/// The TIMESTAMP of a message: RFC 5424's `2026-11-23T10:59:16.123456Z` or RFC 3164's
/// `Nov 23 10:59:16`, in UTC.
fn timestamp(time: SystemTime, format: SyslogFormat) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let (hour, minute, second) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match format {
        SyslogFormat::Rfc5424 => format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:06}Z",
            since_epoch.subsec_micros()
        ),
        SyslogFormat::Rfc3164 => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let month = MONTHS[month as usize - 1];
            format!("{month} {day:>2} {hour:02}:{minute:02}:{second:02}")
        }
    }
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Count from 0000-03-01, so that the leap day ends each 4-year cycle; an era is 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Publisher for SyslogPublisher {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        let framed = matches!(self.transport, Transport::Tcp { .. });
        let write_timeout = self.write_timeout;
        self.format_batch(batch, framed);
        if matches!(self.transport, Transport::Relp { .. }) {
            return self.publish_relp(batch);
        }
        let (bytes, ends) = (&self.scratch, &self.ends);
        match &mut self.transport {
            Transport::Relp { .. } => unreachable!("handled above"),
            Transport::Tcp { addrs, stream } => {
                let connection = match stream.take() {
                    Some(open) if still_open(&open) => stream.insert(open),
                    _ => stream.insert(connect(addrs)?),
                };
                let result =
                    write_counted(&mut Within::new(connection, write_timeout), bytes, ends);
                if result.is_err() {
                    // Connect again next time: the daemon may have gone away.
                    *stream = None;
                }
                result
            }
            Transport::Udp(socket) => send_each(bytes, ends, |message| socket.send(message)),
            #[cfg(unix)]
            Transport::Unix { path, socket } => send_each(bytes, ends, |message| {
                let connected = match socket.take() {
                    Some(connected) => socket.insert(connected),
                    None => socket.insert(connect_unix(path)?),
                };
                let result = connected.send(message);
                if result.is_err() {
                    *socket = None;
                }
                result
            }),
        }
    }

    fn resent(&self) -> u64 {
        self.relp.resent
    }

    fn cut(&self) -> u64 {
        self.cut
    }
}

/// A TCP stream whose writes, together, may take at most a given time: each write may block only
/// for what is left of it, and fails with `TimedOut` once none is.
struct Within<'a> {
    stream: &'a mut TcpStream,
    limit: Duration,
    deadline: std::time::Instant,
}

impl<'a> Within<'a> {
    fn new(stream: &'a mut TcpStream, limit: Duration) -> Within<'a> {
        Within {
            stream,
            limit,
            deadline: std::time::Instant::now() + limit,
        }
    }
}

impl io::Write for Within<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self
            .deadline
            .checked_duration_since(std::time::Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the daemon took more than {:?} to take a batch", self.limit),
                )
            })?;
        self.stream.set_write_timeout(Some(left))?;
        io::Write::write(self.stream, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(self.stream)
    }
}

/// Sends each message (the pieces of `bytes` ending at `ends`) as one datagram.
fn send_each(
    bytes: &[u8],
    ends: &[usize],
    mut send: impl FnMut(&[u8]) -> io::Result<usize>,
) -> Result<usize, PublishError> {
    let mut start = 0;
    for (sent, &end) in ends.iter().enumerate() {
        send(&bytes[start..end]).map_err(|error| PublishError::new(error).with_delivered(sent))?;
        start = end;
    }
    Ok(ends.len())
}

#[cfg(unix)]
fn connect_unix(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot connect to {}: {error}", path.display()),
        )
    })?;
    Ok(socket)
}

impl fmt::Debug for SyslogPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Udp(socket) => format!("udp {:?}", socket.peer_addr().ok()),
            Transport::Tcp { addrs, .. } => format!("tcp {addrs:?}"),
            Transport::Relp { addrs, .. } => format!("relp {addrs:?}"),
            #[cfg(unix)]
            Transport::Unix { path, .. } => format!("unix {}", path.display()),
        };
        f.debug_struct("SyslogPublisher")
            .field("transport", &transport)
            .field("format", &self.format)
            .field("facility", &self.facility)
            .field("severity", &self.severity)
            .field("hostname", &self.hostname)
            .field("app_name", &self.app_name)
            .field("procid", &self.procid)
            .finish()
    }
}

fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the syslog address resolved to nothing",
        ));
    }
    Ok(addrs)
}

fn connect(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => {
                last = Some(io::Error::new(
                    error.kind(),
                    format!("cannot connect to syslog at {addr}: {error}"),
                ))
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotConnected)))
}

/// Whether the daemon has not closed the connection (it never sends anything, so a readable end of
/// stream or an error means it is gone).
fn still_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let open = match stream.peek(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(error) => error.kind() == io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).is_ok() && open
}

/// A header field: printable US-ASCII without spaces (RFC 5424 §6), at most `max` characters, or
/// the nil value `-` when empty.
fn header_field(value: &str, max: usize) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "-".to_owned()
    } else {
        cleaned
    }
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Syslog facilities (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Facility {
    /// Kernel messages.
    Kern = 0,
    /// User-level messages (the default).
    User = 1,
    /// The mail system.
    Mail = 2,
    /// System daemons.
    Daemon = 3,
    /// Security and authorization messages.
    Auth = 4,
    /// Messages generated by the syslog daemon itself.
    Syslog = 5,
    /// The line printer subsystem.
    Lpr = 6,
    /// Network news.
    News = 7,
    /// The UUCP subsystem.
    Uucp = 8,
    /// The clock daemon.
    Cron = 9,
    /// Private security and authorization messages.
    Authpriv = 10,
    /// The FTP daemon.
    Ftp = 11,
    /// Local use 0.
    Local0 = 16,
    /// Local use 1.
    Local1 = 17,
    /// Local use 2.
    Local2 = 18,
    /// Local use 3.
    Local3 = 19,
    /// Local use 4.
    Local4 = 20,
    /// Local use 5.
    Local5 = 21,
    /// Local use 6.
    Local6 = 22,
    /// Local use 7.
    Local7 = 23,
}

/// Syslog severities (RFC 5424 §6.2.1), most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The system is unusable.
    Emergency = 0,
    /// Action must be taken immediately.
    Alert = 1,
    /// Critical conditions.
    Critical = 2,
    /// Error conditions; `tracing`'s `ERROR`.
    Error = 3,
    /// Warning conditions; `tracing`'s `WARN`.
    Warning = 4,
    /// Normal but significant conditions.
    Notice = 5,
    /// Informational messages; `tracing`'s `INFO`, and the default.
    Informational = 6,
    /// Debug-level messages; `tracing`'s `DEBUG` and `TRACE`.
    Debug = 7,
}

impl From<Level> for Severity {
    fn from(level: Level) -> Severity {
        match level {
            Level::Error => Severity::Error,
            Level::Warn => Severity::Warning,
            Level::Info => Severity::Informational,
            Level::Debug | Level::Trace => Severity::Debug,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn publisher() -> SyslogPublisher {
        SyslogPublisher::tcp("127.0.0.1:9")
            .unwrap()
            .hostname("web 1\u{e9}")
            .app_name("shop")
            .procid("42")
            .facility(Facility::Local3)
    }

    /// 2026-11-23T10:59:16.123456789Z
    fn moment() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_795_431_556, 123_456_789)
    }

    fn message(publisher: &mut SyslogPublisher, text: &str, level: Option<Level>) -> String {
        let mut out = Vec::new();
        let entry = Entry::new(0, Bytes::copy_from_slice(text.as_bytes()), level).stamped(moment());
        publisher.message(&entry, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_rfc5424_with_cleaned_header_fields() {
        let p = &mut publisher();
        // local3 (19) * 8 + informational (6) = 158
        assert_eq!(
            message(p, "hello\tw\u{f6}rld\n", None),
            "<158>1 2026-11-23T10:59:16.123456Z web_1_ shop 42 - - hello\tw\u{f6}rld"
        );
        assert_eq!(
            message(p, "crlf\r\n", None),
            "<158>1 2026-11-23T10:59:16.123456Z web_1_ shop 42 - - crlf"
        );
        assert_eq!(
            message(p, "two\nlines\n", None),
            "<158>1 2026-11-23T10:59:16.123456Z web_1_ shop 42 - - two\nlines"
        );
    }

    #[test]
    fn a_message_longer_than_the_limit_is_cut_at_a_character_and_counted_once() {
        let p = &mut publisher().max_message_size(480);
        let header = "<158>1 2026-11-23T10:59:16.123456Z web_1_ shop 42 - - ";
        // "é" is two bytes: the limit falls inside one of them somewhere.
        let long = "é".repeat(400);
        for _ in 0..3 {
            let shown = message(p, &long, None);
            assert!(shown.len() <= 480 && shown.len() >= 479, "{}", shown.len());
            assert!(shown.starts_with(header));
            assert!(shown[header.len()..].chars().all(|c| c == 'é'));
        }
        // The same entry formatted again (a retried batch): counted once.
        assert_eq!(p.cut(), 1);
        assert_eq!(message(p, "short", None), format!("{header}short"));
        assert_eq!(p.cut(), 1);
    }

    #[test]
    fn formats_rfc3164_with_and_without_the_host() {
        let p = &mut publisher()
            .format(SyslogFormat::Rfc3164)
            .app_name("my:app[1]");
        assert_eq!(
            message(p, "hello\n", None),
            "<158>Nov 23 10:59:16 web_1_ my_app_1_[42]: hello"
        );
        #[cfg(unix)]
        {
            let mut local = SyslogPublisher::unix("/nonexistent/log")
                .unwrap()
                .app_name("shop")
                .procid("7");
            assert_eq!(local.format, SyslogFormat::Rfc3164);
            assert_eq!(
                message(&mut local, "hi", None),
                "<14>Nov 23 10:59:16 shop[7]: hi"
            );
            let mut local = local.procid("");
            assert_eq!(
                message(&mut local, "hi", None),
                "<14>Nov 23 10:59:16 shop: hi"
            );
            let modern = &mut local.format(SyslogFormat::Rfc5424);
            assert!(message(modern, "hi", None).starts_with("<14>1 2026-11-23T10:59:16.123456Z "));
        }
    }

    #[test]
    fn timestamps_across_the_calendar() {
        let at = |secs: u64, format| timestamp(UNIX_EPOCH + Duration::from_secs(secs), format);
        assert_eq!(at(0, SyslogFormat::Rfc5424), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day in a year divisible by 400), 2100-03-01 (2100 is no leap year).
        assert_eq!(
            at(951_782_400, SyslogFormat::Rfc5424),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            at(4_107_542_399, SyslogFormat::Rfc5424),
            "2100-02-28T23:59:59.000000Z"
        );
        assert_eq!(at(4_107_542_400, SyslogFormat::Rfc3164), "Mar  1 00:00:00");
        assert_eq!(at(1_798_761_599, SyslogFormat::Rfc3164), "Dec 31 23:59:59");
        // Before the epoch: the epoch.
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(5), SyslogFormat::Rfc5424),
            "1970-01-01T00:00:00.000000Z"
        );
        // Every day of 400 years round-trips against a day counter.
        let mut expected = (1970, 1, 1);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (y, m, d) = expected;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            expected = if d < month_len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn severity_follows_the_level() {
        let p = &mut publisher().severity(Severity::Notice);
        let mut pri = |level| message(p, "x", level)[1..4].to_owned();
        assert_eq!(pri(None), "157");
        assert_eq!(pri(Some(Level::Error)), "155");
        assert_eq!(pri(Some(Level::Warn)), "156");
        assert_eq!(pri(Some(Level::Info)), "158");
        assert_eq!(pri(Some(Level::Debug)), "159");
        assert_eq!(pri(Some(Level::Trace)), "159");
    }

    #[test]
    fn empty_and_long_fields() {
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field(&"a".repeat(60), 48).len(), 48);
    }
}
