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

use clap::{Args, Parser, Subcommand, ValueEnum};
use memtail::follow::{Follow, Follower};
use memtail::http::wire::{
    self, json_quote, parse_duration, without_line_end, EntryJson, PatternError, SseParser,
    PATTERN_MAX,
};
use memtail::http::Config;
use memtail::LogBuffer;

#[derive(Parser, Debug)]
#[command(
    name = "memtail",
    version,
    about = "Recent logs in memory, live: follow files and serve them to a browser, or follow a memtail server",
    propagate_version = true,
    after_help = EXAMPLES
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
    /// Follow memtail servers' event streams and print them, reconnecting where they left off.
    #[command(after_help = TAIL_EXAMPLES)]
    Tail(Tail),
}

const EXAMPLES: &str = "\
Examples:
  memtail serve /var/log/app.log                 follow a file, view it at http://127.0.0.1:8080/
  memtail serve --label api api.log --label db db.log
  memtail tail http://127.0.0.1:8080/            follow it from another terminal
  memtail tail -n 20 --level warn http://127.0.0.1:8080/
  memtail tail --no-follow --since 5m -o json http://127.0.0.1:8080/";

const TAIL_EXAMPLES: &str = "\
Examples:
  memtail tail -n 20 URL                         the newest 20 entries, then follow
  memtail tail --level error URL                 only errors (the server filters)
  memtail tail --grep 'timeout|refused' --exclude healthz URL
  memtail tail --since 5m --no-follow URL        the last five minutes, then exit
  memtail tail -o json --target db URL           one JSON object per line: seq, time, level, target, text";

#[derive(Args, Debug)]
struct Serve {
    /// Files to follow, like `tail -F` (waiting for files that do not exist yet). `-` or none:
    /// standard input.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Address to listen on; port 0 picks a free port (the line printed at start says which).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
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
    /// Start each file with its last N lines (counted as `tail -n` counts them) instead of at
    /// its end.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 10)]
    lines: usize,
    /// Check the files every 50 ms instead of asking the kernel to say when they change (for
    /// file systems that do not say: NFS, FUSE, volumes written from another machine).
    #[arg(long)]
    poll: bool,
    /// With several files, do not put `NAME: ` before each line.
    #[arg(long)]
    no_prefix: bool,
    /// Name the files' lines with these labels instead of the files' names, one per FILE in the
    /// same order: `--label api --label db`. A line's label is its target, which `?target=`,
    /// the viewer's target box and `memtail tail` select by.
    #[arg(long = "label", value_name = "NAME")]
    labels: Vec<String>,
    /// The most lines sent to a client at once (they are also capped at 64 KiB). A client has
    /// no queue of its own: it reads the lines the server keeps (--capacity) at its own pace, and
    /// misses (and is told about) only those dropped from memory before it read them.
    /// `--queue` is an older name for this.
    #[arg(long, alias = "queue", value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
}

#[derive(Args, Debug)]
struct Tail {
    /// Servers, like http://127.0.0.1:8080/ (or their /events address; https too). With more
    /// than one, their lines are merged as they arrive, each after a label naming its server.
    #[arg(value_name = "URL", required = true)]
    urls: Vec<String>,
    /// Start with the newest N entries the server retains (of those the filters keep), then
    /// follow. `-n 0`: only what comes next.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    lines: Option<u32>,
    /// Only entries at this level or more severe (entries with no level are left out).
    #[arg(long, value_name = "LEVEL", value_enum, ignore_case = true)]
    level: Option<LevelArg>,
    /// Only entries of this target and those under it: with `memtail serve`, a file's name or
    /// --label; in a program, a tracing or log target like my_app::db.
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
    /// Only entries whose text matches this regular expression (the regex crate's syntax;
    /// `(?i)` for any case): `--grep 'timeout|refused'`. The server does the matching.
    #[arg(long, value_name = "REGEX")]
    grep: Option<String>,
    /// Leave out entries whose text matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    exclude: Option<String>,
    /// Start with the entries of the last DURATION (`90s`, `5m`, `2h`, `1d`), or at the entry
    /// with this sequence number (a bare number), instead of with all the server retains.
    #[arg(long, value_name = "DURATION|SEQ", value_parser = parse_since)]
    since: Option<Since>,
    /// How entries are printed: `short` (the time, then the text, coloured by level) or `json`
    /// (one object per line: seq, time, level, target, text; and server, with several).
    #[arg(short = 'o', long = "output", value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Short)]
    output: OutputFormat,
    /// Print what the server retains (and the filters keep), then exit, instead of following.
    #[arg(long)]
    no_follow: bool,
    /// Print control characters as they are (by default escape sequences and other control
    /// characters from the log are shown escaped, like \x1b]0;title\x07 or \r, so that a log
    /// line cannot retitle, recolour or rewrite your terminal; colours follow --color).
    #[arg(long)]
    raw: bool,
    /// Show the log's colours (SGR sequences such as \x1b[31m): `auto` when standard output is
    /// a terminal and NO_COLOR is not set, `always`, or `never` (they are removed).
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    /// Keep trying when the first connection fails; by default that is an error (exit 1).
    #[arg(long)]
    retry: bool,
    /// The server's token, if it asks for one. Prefer the MEMTAIL_TOKEN variable: arguments are
    /// visible to other users in `ps`. The token is never printed.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MEMTAIL_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Trust the certificates in this PEM file for https, besides the system's.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
}

/// `memtail tail --level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LevelArg {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LevelArg {
    fn as_str(self) -> &'static str {
        match self {
            LevelArg::Trace => "trace",
            LevelArg::Debug => "debug",
            LevelArg::Info => "info",
            LevelArg::Warn => "warn",
            LevelArg::Error => "error",
        }
    }
}

/// `memtail tail -o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Short,
    Json,
}

/// `memtail tail --since`: a sequence number, or a window of time as the server takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Since {
    Seq(u64),
    /// Sent as `?last=`.
    Window(String),
}

fn parse_since(text: &str) -> Result<Since, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Since::Seq)
            .map_err(|_| "a sequence number too large".to_owned());
    }
    // A window as the server takes it (`?last=`), written with its unit.
    if parse_duration(text).is_some() {
        Ok(Since::Window(text.to_owned()))
    } else {
        Err("expected a duration like 90s, 5m, 2h or 1d, or a sequence number".to_owned())
    }
}

/// Checks a `--grep` or `--exclude` pattern here, with the server's bounds, so that a mistake
/// is said before connecting.
fn check_pattern(flag: &str, pattern: &str) -> Result<(), Failure> {
    wire::check_pattern(pattern).map_err(|error| match error {
        PatternError::Size => fail(2, format!("{flag}: a pattern is 1 to {PATTERN_MAX} bytes")),
        PatternError::Invalid(why) => fail(2, format!("{flag} {pattern:?}: {why}")),
        _ => fail(
            2,
            format!("{flag} {pattern:?}: not a pattern the server takes"),
        ),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
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
            // File names and servers' words are in it: escaped, as `tail` escapes lines.
            eprintln!("memtail: {}", escape(&message, false));
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

/// A listening address: `HOST:PORT` with a port from 0 to 65535.
fn parse_listen(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    if host.is_empty() {
        return Err(format!(
            "{text:?} has no host (use 127.0.0.1:PORT or 0.0.0.0:PORT)"
        ));
    }
    port.parse::<u16>()
        .map_err(|_| format!("{text:?}: the port must be a number from 0 to 65535"))?;
    Ok(text.to_owned())
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

    if !serve.labels.is_empty() && serve.labels.len() != files.len() {
        return Err(fail(
            2,
            format!(
                "--label was given {} time(s) for {} file(s): give one label per file, in order",
                serve.labels.len(),
                files.len()
            ),
        ));
    }
    if let Some(label) = serve
        .labels
        .iter()
        .find(|label| label.is_empty() || label.len() > 256 || label.chars().any(char::is_control))
    {
        return Err(fail(
            2,
            format!(
                "--label {}: a label is 1 to 256 characters, none of them control characters",
                escape(label, false)
            ),
        ));
    }

    // Each file's label: given, or its name.
    let labels: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(at, file)| {
            serve.labels.get(at).cloned().unwrap_or_else(|| {
                file.file_name().filter(|_| !is_stdin(file)).map_or_else(
                    || "stdin".to_owned(),
                    |name| name.to_string_lossy().into_owned(),
                )
            })
        })
        .collect();
    let buf = LogBuffer::with_capacity(serve.capacity);
    let prefixed = files.len() > 1 && !serve.no_prefix;
    let followers: Vec<(String, Follower)> = files
        .iter()
        .enumerate()
        .map(|(at, file)| {
            let name = if is_stdin(file) {
                "stdin".to_owned()
            } else {
                file.display().to_string()
            };
            // Each line gets the time it was read, the level its text shows (if any) and its
            // file's label, so that ?level=, ?last= and ?target= answer for files too.
            let label = labels[at].clone();
            let mut follow = Follow::new()
                .last_lines(serve.lines)
                .polling(serve.poll)
                .announce(true)
                .levels(true)
                .times(true)
                .target(label);
            if prefixed {
                let shown = serve.labels.get(at).unwrap_or(&name);
                follow = follow.prefix(format!("{shown}: "));
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
    // starting position by then, however long that takes (and says so while it does).
    for (name, follower) in &followers {
        while !follower.wait_ready(Duration::from_secs(10)) {
            if !follower.is_running() {
                break;
            }
            let said = format!("still taking the starting position of {name}");
            eprintln!("memtail: {}", escape(&said, false));
        }
    }

    let mut config = Config::new()
        .title(labels.join(", "))
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
    // TCP_NODELAY on every connection; until SIGINT (Ctrl-C) or SIGTERM, then gracefully:
    // streams end with a final event, and the process exits 0.
    config
        .serve(buf, listener)
        .with_graceful_shutdown(stop_signal())
        .await
        .map_err(|error| fail(1, format!("serving: {error}")))
}

/// Returns when the process is asked to stop: SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn is_stdin(file: &std::path::Path) -> bool {
    file.as_os_str() == "-"
}

/// A file that exists must be readable; one that does not is waited for. A FIFO is not opened
/// here (that would wait for a writer): the follower opens it without waiting.
fn check_readable(file: &std::path::Path) -> Result<(), Failure> {
    match std::fs::metadata(file) {
        Ok(metadata) if metadata.is_dir() => Err(fail(
            1,
            format!("cannot follow {}: it is a directory", file.display()),
        )),
        Ok(metadata) if !metadata.is_file() => Ok(()),
        Ok(_) => std::fs::File::open(file)
            .map(drop)
            .map_err(|error| fail(1, format!("cannot read {}: {error}", file.display()))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            eprintln!(
                "memtail: {} does not exist yet; waiting for it",
                escape(&file.display().to_string(), false)
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
                    // A file's name can hold terminal escapes: shown escaped.
                    let said = format!("following {name}: {error}");
                    eprintln!("memtail: {}", escape(&said, false));
                }
            }
        }
    }
}

async fn run_tail(tail: Tail) -> Result<(), Failure> {
    let urls = tail
        .urls
        .iter()
        .map(|url| events_url(url))
        .collect::<Result<Vec<_>, _>>()?;
    if tail.token.as_deref() == Some("") {
        return Err(fail(2, "--token (or MEMTAIL_TOKEN) must not be empty"));
    }
    for (flag, pattern) in [("--grep", &tail.grep), ("--exclude", &tail.exclude)] {
        if let Some(pattern) = pattern {
            check_pattern(flag, pattern)?;
        }
    }
    if tail
        .target
        .as_deref()
        .is_some_and(|target| target.is_empty() || target.len() > 256)
    {
        return Err(fail(2, "--target: a target is 1 to 256 bytes"));
    }
    // What the server keeps, asked on every connection; and where the first one starts.
    let mut filters: Vec<(&'static str, String)> = Vec::new();
    if let Some(level) = tail.level {
        filters.push(("level", level.as_str().to_owned()));
    }
    for (name, value) in [
        ("target", &tail.target),
        ("grep", &tail.grep),
        ("exclude", &tail.exclude),
    ] {
        if let Some(value) = value {
            filters.push((name, value.clone()));
        }
    }
    let mut start: Vec<(&'static str, String)> = Vec::new();
    match &tail.since {
        Some(Since::Seq(seq)) => start.push(("since", seq.to_string())),
        Some(Since::Window(window)) => start.push(("last", window.clone())),
        None => {}
    }
    if let Some(lines) = tail.lines {
        start.push(("n", lines.to_string()));
    }
    let mut client = reqwest::Client::builder();
    if let Some(path) = &tail.cacert {
        let pem = std::fs::read(path)
            .map_err(|error| fail(2, format!("cannot read {}: {error}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| fail(2, format!("{}: {}", path.display(), root_cause(&error))))?;
        for certificate in certificates {
            client = client.add_root_certificate(certificate);
        }
    }
    // No `Referer` on a redirect: the URL may carry a token.
    let client = client
        .referer(false)
        .build()
        .map_err(|error| fail(1, format!("cannot start: {}", root_cause(&error))))?;
    let colors = match tail.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            use std::io::IsTerminal;
            io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").map_or(true, |value| value.is_empty())
        }
    };
    let labels = (urls.len() > 1).then(|| labels(&urls));
    let stdout = io::stdout();
    let mut out = Output {
        out: io::BufWriter::new(stdout.lock()),
        raw: tail.raw,
        colors: colors && tail.output == OutputFormat::Short,
        labels,
        json: tail.output == OutputFormat::Json,
    };
    if tail.no_follow {
        let query: Vec<(&str, String)> = filters.iter().chain(&start).cloned().collect();
        for (source, url) in urls.iter().enumerate() {
            let entries = snapshot(&client, url, &query, tail.token.as_deref()).await?;
            for entry in &entries {
                if out.entry(source, entry).is_err() {
                    return Ok(());
                }
            }
        }
        let _ = out.out.flush();
        return Ok(());
    }
    let (sender, mut received) = tokio::sync::mpsc::channel(1024);
    for (source, url) in urls.into_iter().enumerate() {
        let follow = Source {
            client: client.clone(),
            url,
            source,
            filters: filters.clone(),
            start: start.clone(),
            token: tail.token.clone(),
            retry: tail.retry,
            out: sender.clone(),
        };
        tokio::spawn(follow.run());
    }
    drop(sender);
    while let Some(first) = received.recv().await {
        let mut next = Some(first);
        while let Some(message) = next {
            let written = match message {
                Message::Fatal(failure) => return Err(failure),
                Message::Entry(source, entry) => out.entry(source, &entry),
                Message::Missed(source, count) => out.missed(source, count),
                Message::Restarted(source) => out.restarted(source),
                Message::Closed(source) => out.notice(source, "server closed; reconnecting"),
                Message::Silent(source, silence) => out.notice(
                    source,
                    &format!(
                        "nothing heard for {:.0}s; reconnecting",
                        silence.as_secs_f64()
                    ),
                ),
            };
            if written.is_err() {
                // Standard output is gone (`memtail tail ... | head`): stop quietly.
                return Ok(());
            }
            next = received.try_recv().ok();
        }
        if out.out.flush().is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// What a server's task hands to the printer.
enum Message {
    Entry(usize, Shown),
    Missed(usize, u64),
    Restarted(usize),
    /// A stream that was up ended: the server went away, or the network.
    Closed(usize),
    /// A stream that was up heard nothing, not even a heartbeat, for this long.
    Silent(usize, Duration),
    /// The first connection failed (without `--retry`), or the server refused: exit.
    Fatal(Failure),
}

/// One server, followed by a task of its own.
struct Source {
    client: reqwest::Client,
    url: reqwest::Url,
    source: usize,
    /// Query parameters sent on every connection (`level`, `target`, `grep`, `exclude`).
    filters: Vec<(&'static str, String)>,
    /// Where the first connection starts (`since`, `last`, `n`); a reconnection resumes after
    /// the last entry printed instead.
    start: Vec<(&'static str, String)>,
    token: Option<String>,
    retry: bool,
    out: tokio::sync::mpsc::Sender<Message>,
}

impl Source {
    async fn run(self) {
        let shown = redacted(&self.url);
        // The id of the last entry printed (`INSTANCE-SEQ`): where a reconnection resumes. A
        // server that is not the same buffer any more (restarted) says so and starts from its
        // oldest entry.
        let mut last: Option<String> = None;
        let mut connected_once = false;
        let mut delay = Duration::from_millis(250);
        let mut said_bad_id = false;
        // When a failed attempt was last said: at most one line every few seconds.
        let mut last_said: Option<std::time::Instant> = None;
        loop {
            let mut request = self
                .client
                .get(self.url.clone())
                .query(&[("format", "json")])
                .query(&self.filters)
                .header("accept", "text/event-stream");
            match &last {
                Some(last) => request = request.header("last-event-id", last.as_str()),
                None => request = request.query(&self.start),
            }
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let lost = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    connected_once = true;
                    let since = std::time::Instant::now();
                    let read = self
                        .read_events(response, &mut last, &mut said_bad_id)
                        .await;
                    delay = next_delay(delay, since.elapsed());
                    // One calm line, whatever the transport said (a server stopped mid-chunk
                    // is "unexpected EOF during chunk size line" to it).
                    let closed = match read {
                        Err(ReadError::Output) => return,
                        Ok(()) | Err(ReadError::Network) => Message::Closed(self.source),
                        Err(ReadError::Silent(silence)) => Message::Silent(self.source, silence),
                    };
                    if self.out.send(closed).await.is_err() {
                        return;
                    }
                    last_said = None;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_DELAY);
                    continue;
                }
                Ok(mut response) => {
                    let status = response.status();
                    // The server's reason, from the first 200 bytes of its answer, escaped: a
                    // hostile server must not write to the terminal through it either.
                    let body = match tokio::time::timeout(Duration::from_secs(5), response.chunk())
                        .await
                    {
                        Ok(Ok(Some(chunk))) => chunk,
                        _ => Default::default(),
                    };
                    let body = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                    let reason = escape(body.lines().next().unwrap_or("").trim(), false);
                    let message = format!("{shown}: {status} {reason}");
                    let retryable = status.as_u16() == 503 || status.is_server_error();
                    if !retryable || (!connected_once && !self.retry) {
                        let _ = self.out.send(Message::Fatal(fail(1, message))).await;
                        return;
                    }
                    message
                }
                Err(error) => {
                    let message = format!("{shown}: {}", root_cause(&error));
                    if !connected_once && !self.retry {
                        let message = format!("{message} (--retry keeps trying)");
                        let _ = self.out.send(Message::Fatal(fail(1, message))).await;
                        return;
                    }
                    message
                }
            };
            let now = std::time::Instant::now();
            if last_said.map_or(true, |said| now.duration_since(said) >= SAY_EVERY) {
                last_said = Some(now);
                eprintln!("memtail: {}; retrying", escape(&lost, false));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_DELAY);
        }
    }

    /// Reads one response's events until it ends, handing them to the printer.
    async fn read_events(
        &self,
        mut response: reqwest::Response,
        last: &mut Option<String>,
        said_bad_id: &mut bool,
    ) -> Result<(), ReadError> {
        let mut parser = SseParser::default();
        // A connection on which nothing moves for three heartbeat intervals is dead (a server
        // gone without a word, a network that dropped it): reconnect. The first heartbeat says
        // the interval; until then, 15 s (the server's default) is assumed.
        let mut silence = Duration::from_secs(45);
        loop {
            let chunk = match tokio::time::timeout(silence, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(_)) => return Err(ReadError::Network),
                Err(_) => return Err(ReadError::Silent(silence)),
            };
            for event in parser.push(&chunk) {
                let message = match event.name.as_str() {
                    "heartbeat" => {
                        if let Ok(every) = event.data.trim().parse::<u64>() {
                            silence = silence_after(every);
                        }
                        continue;
                    }
                    "missed" => {
                        Message::Missed(self.source, event.data.trim().parse().unwrap_or(0))
                    }
                    "restart" => Message::Restarted(self.source),
                    "message" | "" => {
                        match event.id.as_deref() {
                            Some(id) if sendable(id) => *last = Some(id.to_owned()),
                            None | Some("") => {}
                            // An id that cannot go back in `Last-Event-ID` (a control character,
                            // too long): a reconnection resumes from the last good one.
                            Some(_) if !std::mem::replace(said_bad_id, true) => eprintln!(
                                "memtail: {}: an event id that cannot be sent back was dropped; \
                                 a reconnection resumes from the last good one",
                                redacted(&self.url)
                            ),
                            Some(_) => {}
                        }
                        let cut = event.cut;
                        Message::Entry(self.source, shown_from_json(event.data, cut))
                    }
                    _ => continue,
                };
                self.out
                    .send(message)
                    .await
                    .map_err(|_| ReadError::Output)?;
            }
        }
    }
}

/// A URL as it may be shown: without a token in its query, nor a password before its host.
fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("REDACTED"));
    }
    if url.query_pairs().any(|(key, _)| key == "token") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "token" {
                    "REDACTED".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// A short name for each server: its host and port, and its path when two share a host.
fn labels(urls: &[reqwest::Url]) -> Vec<String> {
    let host = |url: &reqwest::Url| {
        let name = url.host_str().unwrap_or("?");
        match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_owned(),
        }
    };
    urls.iter()
        .map(|url| {
            let shared = urls.iter().filter(|other| host(other) == host(url)).count() > 1;
            let path = url.path().trim_end_matches("/events").trim_end_matches('/');
            if shared && !path.is_empty() {
                format!("{}{path}", host(url))
            } else {
                host(url)
            }
        })
        .collect()
}

/// An entry as the server sent it, to be shown.
struct Shown {
    text: String,
    seq: Option<u64>,
    target: Option<String>,
    /// RFC 3339, as the server renders times.
    time: Option<String>,
    level: Option<String>,
    /// Longer than `memtail tail` keeps: the rest was not kept.
    cut: bool,
}

/// How often, at most, a failed attempt to reach a server is said.
const SAY_EVERY: Duration = Duration::from_secs(5);

/// The longest wait between two connections to a server.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// The wait before connecting again after a connection that lasted `lasted`, the last wait
/// having been `delay`: from the shortest again after a connection that lasted a while, longer
/// (doubling, up to [`MAX_DELAY`]) after one the server ended at once, whatever it says, so
/// that a server that closes every connection is not asked four times a second.
fn next_delay(delay: Duration, lasted: Duration) -> Duration {
    if lasted >= Duration::from_secs(10) {
        Duration::from_millis(250)
    } else {
        delay
    }
}

/// How long a connection may be silent before it is taken for dead, when the server says its
/// heartbeat comes every `every_ms` milliseconds: three of them, and never less than 3 s, so
/// that a server saying `0` cannot make `memtail tail` reconnect in a loop.
fn silence_after(every_ms: u64) -> Duration {
    Duration::from_millis(every_ms.clamp(1000, 600_000) * 3)
}

/// Whether an event id can be sent back in `Last-Event-ID`: visible ASCII, 1 to 128 bytes.
fn sendable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
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
    /// The printer is gone: stop quietly.
    Output,
    /// The connection broke (the server stopped mid-stream, the network went away).
    Network,
    /// Nothing came, not even a heartbeat, for this long.
    Silent(Duration),
}

/// Colours for the labels of several servers, in turn.
const LABEL_COLORS: [&str; 6] = ["36", "35", "33", "32", "34", "31"];

struct Output<W: Write> {
    out: W,
    raw: bool,
    colors: bool,
    /// One label per server when there are several.
    labels: Option<Vec<String>>,
    /// `-o json`: one object per entry; notices go to standard error.
    json: bool,
}

impl<W: Write> Output<W> {
    /// Writes `line` after the label of `source`, if there are labels.
    fn line(&mut self, source: usize, line: &str) -> io::Result<()> {
        if let Some(labels) = &self.labels {
            let label = &labels[source];
            if self.colors {
                let color = LABEL_COLORS[source % LABEL_COLORS.len()];
                write!(self.out, "\x1b[{color}m{label}\x1b[0m ")?;
            } else {
                write!(self.out, "{label} ")?;
            }
        }
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// An entry as `memtail::render` shows it: its time first, when it has one and its text
    /// has none of its own; coloured by its level when colours are on.
    fn entry(&mut self, source: usize, entry: &Shown) -> io::Result<()> {
        if entry.cut {
            self.print_entry(source, entry)?;
            return self.line(
                source,
                "-- the entry above was cut: longer than memtail tail keeps --",
            );
        }
        self.print_entry(source, entry)
    }

    fn print_entry(&mut self, source: usize, entry: &Shown) -> io::Result<()> {
        if self.json {
            return self.print_json(source, entry);
        }
        let mut text = String::new();
        if let Some(time) = &entry.time {
            if !memtail::render::starts_with_time(entry.text.as_bytes()) {
                text.push_str(time);
                text.push(' ');
            }
        }
        text.push_str(without_line_end(&entry.text));
        let shown = if self.raw {
            text
        } else {
            escape(&text, self.colors)
        };
        let color = match entry.level.as_deref().filter(|_| self.colors) {
            Some("ERROR") => Some("31"),
            Some("WARN") => Some("33"),
            Some("DEBUG" | "TRACE") => Some("2"),
            _ => None,
        };
        for line in shown.split('\n') {
            match color {
                Some(color) => self.line(source, &format!("\x1b[{color}m{line}\x1b[0m"))?,
                None => self.line(source, line)?,
            }
        }
        Ok(())
    }

    /// `{"seq":N,"time":"...","level":"WARN","target":"...","text":"..."}` (and `"server"` with
    /// several), `null` for what the entry has not; the text as it is (JSON escapes every
    /// control character), without its final line break.
    fn print_json(&mut self, source: usize, entry: &Shown) -> io::Result<()> {
        let string = |value: Option<&str>| value.map_or_else(|| "null".to_owned(), json_quote);
        let seq = entry
            .seq
            .map_or_else(|| "null".to_owned(), |seq| seq.to_string());
        let text = without_line_end(&entry.text);
        let mut line = format!(
            "{{\"seq\":{seq},\"time\":{},\"level\":{},\"target\":{},\"text\":{}",
            string(entry.time.as_deref()),
            string(entry.level.as_deref()),
            string(entry.target.as_deref()),
            json_quote(text)
        );
        if let Some(labels) = &self.labels {
            line.push_str(&format!(",\"server\":{}", json_quote(&labels[source])));
        }
        line.push('}');
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// A notice about the stream, `-- like this --`: among the lines, or on standard error
    /// with `-o json` (standard output stays one object per line).
    fn notice(&mut self, source: usize, text: &str) -> io::Result<()> {
        if self.json {
            let label = self
                .labels
                .as_ref()
                .map(|labels| format!("{}: ", labels[source]))
                .unwrap_or_default();
            eprintln!("memtail: {label}{text}");
            return Ok(());
        }
        self.line(source, &format!("-- {text} --"))
    }

    fn missed(&mut self, source: usize, count: u64) -> io::Result<()> {
        self.notice(source, &format!("{count} entries missed"))
    }

    fn restarted(&mut self, source: usize) -> io::Result<()> {
        self.notice(source, "the log started over")
    }
}

/// An entry from one line of `/snapshot?format=ndjson` or one `/events?format=json` event (an
/// event that is not such an object is shown as it came).
fn shown_from_json(data: String, cut: bool) -> Shown {
    match EntryJson::parse(&data) {
        Some(entry) => Shown {
            seq: entry.seq,
            time: entry.time,
            level: entry.level,
            target: entry.target,
            text: entry.text,
            cut,
        },
        None => Shown {
            text: data,
            seq: None,
            time: None,
            level: None,
            target: None,
            cut,
        },
    }
}

/// The most of a snapshot `memtail tail --no-follow` reads from one server.
const MAX_SNAPSHOT: usize = 256 << 20;

/// `--no-follow`: what the server at `events` (its `/events` address) retains and `query`
/// keeps, from its `/snapshot` as NDJSON.
async fn snapshot(
    client: &reqwest::Client,
    events: &reqwest::Url,
    query: &[(&str, String)],
    token: Option<&str>,
) -> Result<Vec<Shown>, Failure> {
    let mut url = events.clone();
    let path = url.path().strip_suffix("/events").unwrap_or("").to_owned();
    url.set_path(&format!("{path}/snapshot"));
    let shown = redacted(&url);
    let mut request = client.get(url).query(&[("format", "ndjson")]).query(query);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .await
        .map_err(|error| fail(1, format!("{shown}: {}", root_cause(&error))))?;
    let mut body = Vec::new();
    let mut cut = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_SNAPSHOT.saturating_sub(body.len());
                cut |= chunk.len() > room;
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if cut {
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => return Err(fail(1, format!("{shown}: {}", root_cause(&error)))),
        }
    }
    let status = response.status();
    if !status.is_success() {
        let body = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let reason = body.lines().next().unwrap_or("").trim().to_owned();
        return Err(fail(1, format!("{shown}: {status} {reason}")));
    }
    if cut {
        eprintln!(
            "memtail: {shown}: only the first {} MiB were read",
            MAX_SNAPSHOT >> 20
        );
    }
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| shown_from_json(line.to_owned(), false))
        .collect())
}

/// The `/events` address of a server given as its base address or as the events address.
fn events_url(given: &str) -> Result<reqwest::Url, Failure> {
    let mut url = reqwest::Url::parse(given)
        .map_err(|error| fail(2, format!("{given:?} is not a URL: {error}")))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(fail(
                2,
                format!("{given:?}: unsupported scheme {other:?} (use http or https)"),
            ))
        }
    }
    if !url.path().ends_with("/events") {
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{path}/events"));
    }
    Ok(url)
}

/// Log text made safe for a terminal: escape sequences (CSI, OSC, ...), other C0 and C1 control
/// characters, DEL and bidirectional overrides are shown as `\x1b`, `\r`, `\u{9b}`, ...; line
/// breaks and tabs stay. Colour and style sequences (SGR: `ESC [ digits;... m`) are kept when
/// `colors`, each line then ending with a reset so that no colour leaks into the next, and
/// removed otherwise.
fn escape(text: &str, colors: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut styled = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(len) = sgr_len(rest) {
            if colors {
                out.push_str(&rest[..len]);
                styled = true;
            }
            rest = &rest[len..];
            continue;
        }
        match c {
            '\n' => {
                if std::mem::take(&mut styled) {
                    out.push_str("\x1b[0m");
                }
                out.push('\n');
            }
            '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    if styled {
        out.push_str("\x1b[0m");
    }
    out
}

/// The length of the SGR sequence (`ESC [ (digits | ; | :)* m`) at the start of `text`, if one
/// is there.
fn sgr_len(text: &str) -> Option<usize> {
    let params = text.strip_prefix("\x1b[")?;
    let digits = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
        .count();
    (params.as_bytes().get(digits) == Some(&b'm')).then_some(2 + digits + 1)
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
        for colors in [false, true] {
            assert_eq!(escape("\x1b]0;pwned\x07", colors), "\\x1b]0;pwned\\x07");
            assert_eq!(
                escape("a\rb\u{9b}c\u{202e}d", colors),
                "a\\rb\\u{9b}c\\u{202e}d"
            );
            assert_eq!(escape("tab\tand\nline é", colors), "tab\tand\nline é");
            // Cursor movement and erasing are not colours: escaped either way.
            assert_eq!(escape("\x1b[2J\x1b[1;1H", colors), "\\x1b[2J\\x1b[1;1H");
        }
        // Colours kept, each line reset at its end; or removed.
        let tracing_line = "\x1b[2m12:00\x1b[0m \x1b[32m INFO\x1b[0m ok";
        assert_eq!(escape(tracing_line, true), format!("{tracing_line}\x1b[0m"));
        assert_eq!(escape(tracing_line, false), "12:00  INFO ok");
        assert_eq!(
            escape("\x1b[31mred\nplain", true),
            "\x1b[31mred\x1b[0m\nplain"
        );
        assert_eq!(escape("\x1b[38;5;196mx", false), "x");
        assert_eq!(escape("\x1b[", true), "\\x1b[");
    }

    #[test]
    fn a_password_in_the_url_is_not_shown() {
        let url = reqwest::Url::parse("http://admin:hunter2@h:1/events").unwrap();
        let shown = redacted(&url);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("admin:REDACTED@h:1"), "{shown}");
    }

    #[test]
    fn what_a_server_says_cannot_make_tail_spin() {
        assert_eq!(silence_after(0), Duration::from_secs(3));
        assert_eq!(silence_after(15_000), Duration::from_secs(45));
        assert_eq!(silence_after(u64::MAX), Duration::from_secs(1800));
        // A connection the server ends at once: the wait grows (the caller doubles it).
        let quick = Duration::from_millis(10);
        assert_eq!(
            next_delay(Duration::from_secs(2), quick),
            Duration::from_secs(2)
        );
        assert_eq!(
            next_delay(Duration::from_secs(2), Duration::from_secs(60)),
            Duration::from_millis(250)
        );
        assert!(sendable("3f2a9c1b-42"));
        assert!(!sendable("a\x01b"));
        assert!(!sendable(&"9".repeat(129)));
        assert!(!sendable("caf\u{e9}"));
    }

    #[test]
    fn an_id_too_long_to_send_back_is_not_sent_back() {
        let mut parser = SseParser::default();
        let events = parser.push(format!("id: {}\ndata: x\n\n", "1".repeat(200)).as_bytes());
        assert!(!sendable(events[0].id.as_deref().unwrap()));
    }

    #[test]
    fn tokens_are_not_shown() {
        let url = reqwest::Url::parse("http://h:1/events?token=s3cret&level=warn").unwrap();
        let shown = redacted(&url);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("token=REDACTED") && shown.contains("level=warn"),
            "{shown}"
        );
    }

    #[test]
    fn labels_name_hosts_and_paths_when_hosts_repeat() {
        let urls: Vec<reqwest::Url> = [
            "http://a:1/events",
            "http://b/x/events",
            "http://b/y/events",
        ]
        .iter()
        .map(|url| reqwest::Url::parse(url).unwrap())
        .collect();
        assert_eq!(labels(&urls), ["a:1", "b/x", "b/y"]);
    }

    #[test]
    fn listen_addresses() {
        assert!(parse_listen("127.0.0.1:0").is_ok());
        assert!(parse_listen("[::1]:8080").is_ok());
        assert!(parse_listen("localhost:65535").is_ok());
        assert!(parse_listen("nonsense").is_err());
        assert!(parse_listen("127.0.0.1:99999").is_err());
        assert!(parse_listen(":80").is_err());
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
        assert_eq!(url("https://h/"), Ok("https://h/events".into()));
        assert_eq!(url("ftp://h/"), Err(2));
        assert_eq!(url("nonsense"), Err(2));
    }
}
