//! RFC 5424 syslog messages over UDP, TCP (RFC 6587 octet counting) or a Unix datagram socket.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::writer::write_counted;
use super::{PublishError, Publisher};
use crate::{Entry, Level};

/// How long connecting to a TCP syslog daemon may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long sending one batch to a TCP syslog daemon may take before the attempt counts as
/// failed, however the bytes trickle: a daemon that accepts but never reads fails the attempt
/// within this, and the publisher retries with backoff.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends each entry as one RFC 5424 syslog message.
///
/// The message is `<PRI>1 - HOSTNAME APP-NAME PROCID - - MSG`, where MSG is the entry with its
/// trailing newline (`\n` or `\r\n`) removed and every other byte kept: tabs, UTF-8 and embedded
/// newlines travel as they are. The timestamp is the nil value `-`, so the daemon stamps the time it
/// received the message (entries written through `tracing` usually carry their own time at the
/// start of MSG). There is no byte-order mark before MSG.
///
/// The severity is the entry's [`Level`] when it came from a `tracing` event (feature `tracing`):
/// `ERROR` → error, `WARN` → warning, `INFO` → informational, `DEBUG` and `TRACE` → debug; other
/// entries get [`severity`](SyslogPublisher::severity) (informational by default).
///
/// Transports:
/// - [`udp`](SyslogPublisher::udp): one datagram per message. UDP cannot tell whether the daemon
///   got it; a message larger than a datagram fails (and is dropped after `max_attempts`, counted).
/// - [`tcp`](SyslogPublisher::tcp): octet-counted framing (RFC 6587), so embedded newlines are
///   safe. The connection is made on first use and made again after the daemon restarts: before
///   each batch the publisher checks that the daemon has not closed the connection, and a failed
///   write reconnects on the next try.
/// - [`unix`](SyslogPublisher::unix): one datagram per message to a Unix socket such as `/dev/log`.
///
/// Daemons may alter what they store: rsyslog, for one, escapes control characters (a newline
/// becomes `#012`) unless `parser.escapeControlCharactersOnReceive` is off, and cuts messages
/// longer than its `maxMessageSize` (8 KiB by default).
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
    facility: Facility,
    severity: Severity,
    hostname: String,
    app_name: String,
    procid: String,
    write_timeout: Duration,
    /// `1 - HOSTNAME APP-NAME PROCID - - `: everything after `<PRI>` and before MSG.
    header: String,
    scratch: Vec<u8>,
    ends: Vec<usize>,
}

enum Transport {
    Udp(UdpSocket),
    Tcp {
        addrs: Vec<SocketAddr>,
        stream: Option<TcpStream>,
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

    /// Messages as datagrams to the Unix socket at `path` (for example `/dev/log`). The socket is
    /// connected when the first batch is published, and again after a failure.
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
        let mut publisher = SyslogPublisher {
            transport,
            facility: Facility::User,
            severity: Severity::Informational,
            hostname: header_field(&local_hostname(), 255),
            app_name: header_field(&app_name, 48),
            procid: std::process::id().to_string(),
            write_timeout: SyslogPublisher::DEFAULT_WRITE_TIMEOUT,
            header: String::new(),
            scratch: Vec::new(),
            ends: Vec::new(),
        };
        publisher.build_header();
        publisher
    }

    /// How long sending one batch over TCP may take by default.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = WRITE_TIMEOUT;

    /// How long sending one batch over TCP may take before the attempt counts as failed, however
    /// the bytes trickle ([`DEFAULT_WRITE_TIMEOUT`](SyslogPublisher::DEFAULT_WRITE_TIMEOUT), 10 s,
    /// by default). A daemon that accepts but never reads fails the attempt within it; the
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
        self.header = format!(
            "1 - {} {} {} - - ",
            self.hostname, self.app_name, self.procid
        );
    }

    /// Appends the RFC 5424 message for `entry` to `out`.
    fn message(&self, entry: &Entry, out: &mut Vec<u8>) {
        let severity = entry.level().map_or(self.severity, Severity::from);
        let pri = self.facility as u8 * 8 + severity as u8;
        out.push(b'<');
        out.extend_from_slice(pri.to_string().as_bytes());
        out.push(b'>');
        out.extend_from_slice(self.header.as_bytes());
        out.extend_from_slice(trim_newline(entry));
    }

    /// Formats the batch into `scratch`, one message after the other (each with its octet count
    /// when `framed`), and records where each ends in `ends`.
    fn format_batch(&mut self, batch: &[Entry], framed: bool) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut message = Vec::new();
        scratch.clear();
        self.ends.clear();
        for entry in batch {
            message.clear();
            self.message(entry, &mut message);
            if framed {
                scratch.extend_from_slice(format!("{} ", message.len()).as_bytes());
            }
            scratch.extend_from_slice(&message);
            self.ends.push(scratch.len());
        }
        self.scratch = scratch;
    }
}

impl Publisher for SyslogPublisher {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        let framed = matches!(self.transport, Transport::Tcp { .. });
        let write_timeout = self.write_timeout;
        self.format_batch(batch, framed);
        let (bytes, ends) = (&self.scratch, &self.ends);
        match &mut self.transport {
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
            #[cfg(unix)]
            Transport::Unix { path, .. } => format!("unix {}", path.display()),
        };
        f.debug_struct("SyslogPublisher")
            .field("transport", &transport)
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

fn trim_newline(entry: &[u8]) -> &[u8] {
    let entry = entry.strip_suffix(b"\n").unwrap_or(entry);
    entry.strip_suffix(b"\r").unwrap_or(entry)
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

    fn message(publisher: &SyslogPublisher, text: &str, level: Option<Level>) -> String {
        let mut out = Vec::new();
        let entry = Entry::new(0, Bytes::copy_from_slice(text.as_bytes()), level);
        publisher.message(&entry, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_rfc5424_with_cleaned_header_fields() {
        let p = publisher();
        // local3 (19) * 8 + informational (6) = 158
        assert_eq!(
            message(&p, "hello\tw\u{f6}rld\n", None),
            "<158>1 - web_1_ shop 42 - - hello\tw\u{f6}rld"
        );
        assert_eq!(
            message(&p, "crlf\r\n", None),
            "<158>1 - web_1_ shop 42 - - crlf"
        );
        assert_eq!(
            message(&p, "two\nlines\n", None),
            "<158>1 - web_1_ shop 42 - - two\nlines"
        );
    }

    #[test]
    fn severity_follows_the_level() {
        let p = publisher().severity(Severity::Notice);
        let pri = |level| message(&p, "x", level)[1..4].to_owned();
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
