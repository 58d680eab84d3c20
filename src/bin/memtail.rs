//! `memtail`: follow log files and serve their recent lines to a browser, or follow a memtail
//! server from a terminal.
//!
//! ```text
//! memtail serve /var/log/app.log            # then open http://127.0.0.1:8080/
//! memtail tail http://127.0.0.1:8080/       # the same stream, in a terminal
//! ```
//!
//! Install it with `cargo install --path . --features cli`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use memtail::follow::{Follow, Follower};
use memtail::http::Config;
use memtail::LogBuffer;

#[derive(Parser, Debug)]
#[command(
    name = "memtail",
    version,
    about = "Recent logs in memory, live: follow files and serve them to a browser, or follow a memtail server",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Follow files (or stdin), keep their recent lines in memory, and serve them over HTTP:
    /// a viewer page at /, /snapshot, /events (Server-Sent Events) and /ws.
    Serve(Serve),
    /// Follow a memtail server's event stream and print it, reconnecting where it left off.
    Tail(Tail),
}

#[derive(Args, Debug)]
struct Serve {
    /// Files to follow, like `tail -F` (waiting for files that do not exist yet). `-` or none:
    /// standard input.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Address to listen on; port 0 picks a free port (the line printed at start says which).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    listen: String,
    /// How much of the log to keep in memory: bytes, or with a unit (KiB, MiB, GiB; K, M and G
    /// mean the same).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    capacity: usize,
    /// Require this token on every request (as `Authorization: Bearer TOKEN`, or `?token=TOKEN`).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Let pages of this origin (like https://admin.example.com) follow the log; repeatable.
    #[arg(long = "allow-origin", value_name = "URL")]
    allow_origins: Vec<String>,
    /// Accept this Host name besides localhost and loopback addresses; repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Start each file with its last N lines instead of at its end.
    #[arg(long, value_name = "N", default_value_t = 0)]
    lines: usize,
    /// With several files, do not put `NAME: ` before each line.
    #[arg(long)]
    no_prefix: bool,
    /// The most lines sent to a client at once (they are also capped at 64 KiB). A client has
    /// no queue of its own: it reads the lines the server keeps (--capacity) at its own pace, and
    /// misses (and is told about) only those dropped from memory before it read them.
    /// `--queue` is an older name for this.
    #[arg(long, alias = "queue", value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
}

#[derive(Args, Debug)]
struct Tail {
    /// The server, like http://127.0.0.1:8080/ (or its /events address).
    url: String,
    /// Start at this sequence number instead of with what the server retains.
    #[arg(long, value_name = "SEQ")]
    since: Option<u64>,
    /// Print control characters as they are (by default escape sequences and other control
    /// characters from the log are shown escaped, like \x1b[31m, so that a log line cannot
    /// retitle, recolour or rewrite your terminal).
    #[arg(long)]
    raw: bool,
    /// The server's token, if it asks for one.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = error.print();
                return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's first, without its "error: ", and where to look for more.
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("memtail: {first} (see memtail --help)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("memtail: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Serve(serve) => runtime.block_on(run_serve(serve)),
        Command::Tail(tail) => runtime.block_on(run_tail(tail)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            eprintln!("memtail: {message}");
            ExitCode::from(code)
        }
    }
}

/// Why the command stops: a message for stderr and an exit code (2: bad arguments, 1: the rest).
struct Failure {
    message: String,
    code: u8,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code,
    }
}

/// `1048576`, `1MiB`, `512k`, `2G`: units are powers of 1024.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 1MiB or 65536"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown unit {other:?} (use KiB, MiB or GiB)")),
    };
    let bytes = number
        .checked_mul(1 << shift)
        .filter(|&bytes| bytes > 0 && bytes < (1 << 56))
        .ok_or_else(|| format!("{text:?} is out of range (1 byte to 64 PiB)"))?;
    usize::try_from(bytes).map_err(|_| format!("{text:?} is more than this machine can address"))
}

async fn run_serve(serve: Serve) -> Result<(), Failure> {
    let mut files = serve.files;
    if files.is_empty() {
        files.push(PathBuf::from("-"));
    }
    if files.iter().filter(|file| is_stdin(file)).count() > 1 {
        return Err(fail(2, "standard input (-) can be followed once"));
    }
    for file in files.iter().filter(|file| !is_stdin(file)) {
        check_readable(file)?;
    }

    let buf = LogBuffer::with_capacity(serve.capacity);
    let prefixed = files.len() > 1 && !serve.no_prefix;
    let followers: Vec<(String, Follower)> = files
        .iter()
        .map(|file| {
            let name = if is_stdin(file) {
                "stdin".to_owned()
            } else {
                file.display().to_string()
            };
            let mut follow = Follow::new().last_lines(serve.lines);
            if prefixed {
                follow = follow.prefix(format!("{name}: "));
            }
            let follower = if is_stdin(file) {
                follow.reader(io::stdin(), &buf)
            } else {
                follow.file(file, &buf)
            };
            (name, follower)
        })
        .collect();
    // Lines appended once "serving" is printed are never missed: every follower has taken its
    // starting position by then.
    for (_, follower) in &followers {
        follower.wait_ready(Duration::from_secs(10));
    }

    let mut config = Config::new()
        .follower_batch(serve.batch as usize)
        .allowed_origins(serve.allow_origins)
        .allowed_hosts(serve.allow_hosts.iter().cloned());
    if let Some(token) = serve.token {
        if token.is_empty() {
            return Err(fail(2, "--token must not be empty"));
        }
        config = config.token(token);
    }
    let listener = tokio::net::TcpListener::bind(serve.listen.as_str())
        .await
        .map_err(|error| fail(1, format!("cannot listen on {}: {error}", serve.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|error| fail(1, format!("cannot listen on {}: {error}", serve.listen)))?;
    if !address.ip().is_loopback() && serve.allow_hosts.is_empty() {
        eprintln!(
            "memtail: listening on {address}, beyond loopback: browsers will be refused unless \
             you name the host they use with --allow-host (and consider --token)"
        );
    }
    println!("memtail: serving http://{}/", display_address(address));
    let _ = io::stdout().flush();

    tokio::spawn(report_errors(followers));
    // With the connection limits (header and idle timeouts, a cap on connections) and
    // TCP_NODELAY on every connection.
    config
        .serve(buf, listener)
        .await
        .map_err(|error| fail(1, format!("serving: {error}")))
}

fn is_stdin(file: &std::path::Path) -> bool {
    file.as_os_str() == "-"
}

/// A file that exists must be readable; one that does not is waited for.
fn check_readable(file: &std::path::Path) -> Result<(), Failure> {
    match std::fs::File::open(file) {
        Ok(opened) => match opened.metadata() {
            Ok(metadata) if metadata.is_dir() => Err(fail(
                1,
                format!("cannot follow {}: it is a directory", file.display()),
            )),
            Ok(_) => Ok(()),
            Err(error) => Err(fail(1, format!("cannot read {}: {error}", file.display()))),
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            eprintln!(
                "memtail: {} does not exist yet; waiting for it",
                file.display()
            );
            Ok(())
        }
        Err(error) => Err(fail(1, format!("cannot read {}: {error}", file.display()))),
    }
}

fn display_address(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// Says on stderr (never into the served buffer) what the followers ran into, once per error.
async fn report_errors(followers: Vec<(String, Follower)>) {
    let mut reported = vec![0; followers.len()];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for ((name, follower), reported) in followers.iter().zip(&mut reported) {
            let errors = follower.stats().errors;
            if errors > *reported {
                *reported = errors;
                if let Some(error) = follower.last_error() {
                    eprintln!("memtail: following {name}: {error}");
                }
            }
        }
    }
}

async fn run_tail(tail: Tail) -> Result<(), Failure> {
    let url = events_url(&tail.url)?;
    let client = reqwest::Client::new();
    let stdout = io::stdout();
    let mut out = Output {
        out: io::BufWriter::new(stdout.lock()),
        raw: tail.raw,
    };
    // The id of the last entry printed (`INSTANCE-SEQ`): where a reconnection resumes. A server
    // that is not the same buffer any more (restarted) says so and starts from its oldest entry.
    let mut last: Option<String> = None;
    let mut delay = Duration::from_millis(250);
    loop {
        let mut request = client
            .get(url.clone())
            .header("accept", "text/event-stream");
        match (&last, tail.since) {
            (Some(last), _) => request = request.header("last-event-id", last.as_str()),
            (None, Some(since)) => request = request.query(&[("since", since)]),
            (None, None) => {}
        }
        if let Some(token) = &tail.token {
            request = request.bearer_auth(token);
        }
        let lost = match request.send().await {
            Ok(response) if response.status().is_success() => {
                delay = Duration::from_millis(250);
                match read_events(response, &mut out, &mut last).await {
                    Ok(()) => "the server closed the stream".to_owned(),
                    Err(ReadError::Output) => return Ok(()),
                    Err(ReadError::Network(error)) => root_cause(&error),
                }
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                let reason = body.lines().next().unwrap_or("").trim().to_owned();
                let message = format!("{url}: {status} {reason}");
                if status.as_u16() != 503 && !status.is_server_error() {
                    return Err(fail(1, message));
                }
                message
            }
            Err(error) => format!("{url}: {}", root_cause(&error)),
        };
        eprintln!(
            "memtail: {lost}; reconnecting in {:.1}s",
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The `/events` address of a server given as its base address or as the events address.
fn events_url(given: &str) -> Result<reqwest::Url, Failure> {
    let mut url = reqwest::Url::parse(given)
        .map_err(|error| fail(2, format!("{given:?} is not a URL: {error}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(fail(
                2,
                "https is not supported by this build of memtail tail; use http, or a TLS proxy",
            ))
        }
        other => return Err(fail(2, format!("{given:?}: unsupported scheme {other:?}"))),
    }
    if !url.path().ends_with("/events") {
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{path}/events"));
    }
    Ok(url)
}

/// The innermost cause: "Connection refused (os error 111)" rather than every layer's wording.
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

enum ReadError {
    /// Standard output is gone (`memtail tail ... | head`): stop quietly.
    Output,
    Network(reqwest::Error),
}

struct Output<W: Write> {
    out: W,
    raw: bool,
}

impl<W: Write> Output<W> {
    fn entry(&mut self, data: &str) -> io::Result<()> {
        if self.raw {
            self.out.write_all(data.as_bytes())?;
        } else {
            self.out.write_all(escape(data).as_bytes())?;
        }
        self.out.write_all(b"\n")
    }

    fn missed(&mut self, count: &str) -> io::Result<()> {
        let count: u64 = count.trim().parse().unwrap_or(0);
        writeln!(self.out, "-- {count} entries missed --")
    }

    fn restarted(&mut self) -> io::Result<()> {
        writeln!(self.out, "-- the log started over --")
    }
}

/// Reads one response's events until it ends, printing them.
async fn read_events<W: Write>(
    mut response: reqwest::Response,
    out: &mut Output<W>,
    last: &mut Option<String>,
) -> Result<(), ReadError> {
    let mut parser = SseParser::default();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(()),
            Err(error) => return Err(ReadError::Network(error)),
        };
        for event in parser.push(&chunk) {
            let written = match event.name.as_str() {
                "missed" => out.missed(&event.data),
                "restart" => out.restarted(),
                "message" | "" => {
                    if let Some(id) = event.id.as_deref().filter(|id| !id.is_empty()) {
                        *last = Some(id.to_owned());
                    }
                    out.entry(&event.data)
                }
                _ => Ok(()),
            };
            written.map_err(|_| ReadError::Output)?;
        }
        out.out.flush().map_err(|_| ReadError::Output)?;
    }
}

/// A Server-Sent Events parser, as the specification reads lines and fields.
#[derive(Default)]
struct SseParser {
    pending: Vec<u8>,
    event: Event,
    has_data: bool,
}

#[derive(Default, Debug)]
struct Event {
    name: String,
    id: Option<String>,
    data: String,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(at) = self.pending[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = start + at;
            // A CR at the very end might be the first half of a CRLF: wait for more.
            if self.pending[end] == b'\r' && end + 1 == self.pending.len() {
                break;
            }
            let line = String::from_utf8_lossy(&self.pending[start..end]).into_owned();
            let crlf = self.pending[end] == b'\r' && self.pending.get(end + 1) == Some(&b'\n');
            start = end + if crlf { 2 } else { 1 };
            self.line(&line, &mut events);
        }
        self.pending.drain(..start);
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<Event>) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if std::mem::take(&mut self.has_data) {
                events.push(event);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event.name = value.to_owned(),
            "id" => self.event.id = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

/// Log text made safe for a terminal: escape sequences (CSI, OSC, ...), other C0 and C1 control
/// characters, DEL and bidirectional overrides are shown as `\x1b`, `\r`, `\u{9b}`, ...; line
/// breaks and tabs stay.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(escape("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape("a\rb\u{9b}c\u{202e}d"), "a\\rb\\u{9b}c\\u{202e}d");
        assert_eq!(escape("tab\tand\nline é"), "tab\tand\nline é");
    }

    #[test]
    fn sse_lines() {
        let mut parser = SseParser::default();
        let mut events = parser.push(b"retry: 1000\n\nid: 4\ndata: a\r");
        assert!(events.is_empty());
        events.extend(parser.push(b"\ndata: b\n\n: keep-alive\n\nevent: missed\ndata: 3\n\n"));
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].id.as_deref(), events[0].data.as_str()),
            (Some("4"), "a\nb")
        );
        assert_eq!(
            (events[1].name.as_str(), events[1].data.as_str()),
            ("missed", "3")
        );
    }

    #[test]
    fn urls() {
        let url = |given| {
            events_url(given)
                .map(|url| url.to_string())
                .map_err(|f| f.code)
        };
        assert_eq!(
            url("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080/events".into())
        );
        assert_eq!(url("http://h/logs/"), Ok("http://h/logs/events".into()));
        assert_eq!(
            url("http://h/logs/events"),
            Ok("http://h/logs/events".into())
        );
        assert_eq!(url("https://h/"), Err(2));
        assert_eq!(url("nonsense"), Err(2));
    }
}
