//! Who may connect: the Host, token and Origin checks, and the follower count.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::header::{
    AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::sse::Start;
use super::Served;
use crate::{Entry, Level};

/// A refusal: a status and a one-line reason, answered in plain text.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    reason: Cow<'static, str>,
}

pub(super) fn refuse(status: StatusCode, reason: &'static str) -> Refusal {
    Refusal {
        status,
        reason: Cow::Borrowed(reason),
    }
}

/// A 400 whose reason is made for the request (it names a parameter, or says what is wrong
/// with a pattern): one line, at most 300 bytes, control characters escaped.
fn bad_request(reason: String) -> Refusal {
    let mut line = String::with_capacity(reason.len());
    for c in reason.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    if line.len() > 300 {
        let mut end = 300;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...");
    }
    Refusal {
        status: StatusCode::BAD_REQUEST,
        reason: Cow::Owned(line),
    }
}

/// The query parameters of `/snapshot`.
pub(super) const SNAPSHOT_PARAMS: &[&str] = &[
    "since", "last", "n", "level", "target", "grep", "exclude", "format", "token",
];
/// The query parameters of `/events`: those of `/snapshot` (`format` takes other values).
pub(super) const EVENTS_PARAMS: &[&str] = SNAPSHOT_PARAMS;
/// The query parameters of `/ws`.
pub(super) const WS_PARAMS: &[&str] = &[
    "since", "last", "n", "level", "target", "grep", "exclude", "token",
];

/// 400 for a query parameter the route does not take, naming it: a misspelt `?levle=warn` would
/// otherwise answer everything.
pub(super) fn only_params(uri: &Uri, known: &[&str]) -> Result<(), Refusal> {
    let Some(query) = uri.query() else {
        return Ok(());
    };
    match form_urlencoded::parse(query.as_bytes()).find(|(key, _)| !known.contains(&key.as_ref())) {
        None => Ok(()),
        Some((key, _)) => Err(bad_request(format!(
            "unknown parameter \"{key}\": this address takes {}",
            known.join(", ")
        ))),
    }
}

/// The `n` query parameter: how many of the newest entries (of those the filters keep) an answer
/// starts with.
pub(super) fn count_param(uri: &Uri) -> Result<Option<usize>, Refusal> {
    match query_param(uri, "n") {
        None => Ok(None),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) => Ok(Some(n as usize)),
            Err(_) => Err(refuse(
                StatusCode::BAD_REQUEST,
                "n must be a number of entries (0 to 4294967295)",
            )),
        },
    }
}

/// The longest pattern `?grep=` and `?exclude=` take.
const PATTERN_MAX: usize = 1024;
/// The most memory one compiled pattern (and its lazy DFA) may take: a hostile pattern
/// (`(a{1000}){1000}`) is refused, not built.
const PATTERN_MEMORY: usize = 1 << 20;

/// Compiles a `?grep=` or `?exclude=` pattern, bounded in size.
pub(super) fn pattern(name: &str, text: &str) -> Result<regex::bytes::Regex, Refusal> {
    if text.is_empty() || text.len() > PATTERN_MAX {
        return Err(bad_request(format!(
            "{name} must be a regular expression of 1 to {PATTERN_MAX} bytes"
        )));
    }
    regex::bytes::RegexBuilder::new(text)
        .size_limit(PATTERN_MEMORY)
        .dfa_size_limit(PATTERN_MEMORY)
        .build()
        .map_err(|error| {
            let error = error.to_string();
            let last = error.lines().last().unwrap_or("").trim().to_owned();
            bad_request(format!(
                "{name} is not a regular expression memtail takes: {last}"
            ))
        })
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            format!("memtail: {}\n", self.reason),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"memtail\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The checks every route makes: the host asked for, then the token. Returns the host (as
/// sent), for the `Origin` check.
pub(super) fn admit<'a>(
    served: &Served,
    headers: &'a HeaderMap,
    uri: &'a Uri,
) -> Result<&'a str, Refusal> {
    let host = requested_host(headers, uri)?;
    let allowed =
        host_name(host).is_some_and(|name| host_allowed(&served.config.allowed_hosts, &name));
    if !allowed {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "this Host is not allowed (see memtail::http::Config::allowed_hosts)",
        ));
    }
    if let Some(token) = &served.config.token {
        if !carries_token(headers, uri, token) {
            return Err(refuse(StatusCode::UNAUTHORIZED, "a token is required"));
        }
    }
    Ok(host)
}

/// The host a request asks for: the request target's authority when it has one (RFC 9112
/// 3.2.2: then `Host` is ignored, and here it must agree), else the one `Host` header. 400 for
/// none, two, one that is not visible ASCII, or one that disagrees with the target.
fn requested_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Result<&'a str, Refusal> {
    let mut hosts = headers.get_all(HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err(refuse(StatusCode::BAD_REQUEST, "more than one Host header"));
    }
    let header = match header.map(|value| value.to_str()) {
        None => None,
        Some(Ok(value)) => Some(value.trim()),
        Some(Err(_)) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "the Host header is not visible ASCII",
            ))
        }
    };
    match (uri.authority().map(|authority| authority.as_str()), header) {
        (Some(target), Some(header)) if !target.eq_ignore_ascii_case(header) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "the Host header and the request target name different hosts",
        )),
        (Some(target), _) => Ok(target),
        (None, Some(header)) => Ok(header),
        (None, None) => Err(refuse(StatusCode::BAD_REQUEST, "no Host header")),
    }
}

/// The checks of the streaming routes: [`admit`], then `Origin`, then where the stream starts,
/// then a free follower place.
pub(super) fn admit_follower(
    served: &Arc<Served>,
    headers: &HeaderMap,
    uri: &Uri,
    known: &[&str],
) -> Result<(FollowerGuard, Start), Refusal> {
    let host = admit(served, headers, uri)?;
    only_params(uri, known)?;
    if headers.get_all(ORIGIN).iter().count() > 1 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "more than one Origin header",
        ));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| origin_allowed(&served.config.allowed_origins, origin, host));
        if !allowed {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "this Origin is not allowed (see memtail::http::Config::allowed_origins)",
            ));
        }
    }
    let written = served.buf.stats().entries_written;
    let mut start = Start::from_request(headers, uri, served.buf.shared().instance(), written)?;
    if let Some(seq) = last_window(served, uri)? {
        // A resumption (`Last-Event-ID`) wins: it says exactly where the client was.
        if headers.get("last-event-id").is_none() {
            start = Start {
                seq,
                report_missed: true,
                restarted: false,
                filter: Filter::default(),
            };
        }
    }
    start.filter = Filter::from_uri(uri)?;
    if let Some(n) = count_param(uri)? {
        // The newest `n` (of those the filters keep) from where the stream would start; a
        // resumption still continues exactly where the client was.
        if headers.get("last-event-id").is_none() {
            let from = if start.report_missed { start.seq } else { 0 };
            let replay = served.buf.since(from);
            start.seq = start
                .filter
                .first_of_last(replay.entries(), n, replay.next_seq());
            start.report_missed = true;
        }
    }
    let max = served.config.max_followers;
    let guard = Place::take(served, |served| &served.followers, max).ok_or(refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many followers (see memtail::http::Config::max_followers)",
    ))?;
    Ok((guard, start))
}

/// One open stream, counted against `max_followers` until dropped.
pub(super) type FollowerGuard = Place;

/// A place taken out of a limited number (streams, snapshots), given back when dropped.
pub(super) struct Place {
    served: Arc<Served>,
    count: fn(&Served) -> &AtomicUsize,
}

impl Place {
    /// A place out of `max` counted by `count`, or `None` if all are taken.
    pub(super) fn take(
        served: &Arc<Served>,
        count: fn(&Served) -> &AtomicUsize,
        max: usize,
    ) -> Option<Place> {
        count(served)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()?;
        Some(Place {
            served: Arc::clone(served),
            count,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        (self.count)(&self.served).fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `last` query parameter (`?last=5m`): the sequence number of the first entry appended
/// within that window. 400 when it is not a duration, when `since` is given too, or when the
/// buffer does not record times.
pub(super) fn last_window(served: &Served, uri: &Uri) -> Result<Option<u64>, Refusal> {
    let Some(text) = query_param(uri, "last") else {
        return Ok(None);
    };
    if query_param(uri, "since").is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "give since or last, not both",
        ));
    }
    let window = parse_window(&text).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "last must be a duration like 90s, 5m, 2h or 1d (a bare number is seconds)",
        )
    })?;
    let from = std::time::SystemTime::now()
        .checked_sub(window)
        .unwrap_or(std::time::UNIX_EPOCH);
    served.buf.seq_since_time(from).map(Some).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "this log does not record times, so last cannot be answered \
             (memtail's tracing layer and logger record them; for other writes, \
             memtail::LogBuffer::builder().timestamps(true))",
        )
    })
}

/// `500ms`, `90s`, `5m`, `2h`, `1d`, or a bare number of seconds.
pub(super) fn parse_window(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(
        number.checked_mul(millis)?,
    ))
}

/// The `level` query parameter: the least severe level an answer keeps (entries with no level
/// are left out).
pub(super) fn min_level(uri: &Uri) -> Result<Option<Level>, Refusal> {
    match query_param(uri, "level") {
        None => Ok(None),
        Some(name) => name.parse().map(Some).map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                "level must be one of trace, debug, info, warn, error",
            )
        }),
    }
}

/// What an answer keeps: `?level=` (that level or more severe) and `?target=` (that target or
/// one under it: `my_app` keeps `my_app` and `my_app::db`). An entry with no level is not kept by
/// `?level=` (as `journalctl -p` leaves out what has no priority); one with no target cannot be
/// told apart by `?target=` and is kept.
#[derive(Clone, Debug, Default)]
pub(super) struct Filter {
    level: Option<Level>,
    target: Option<Arc<str>>,
    /// `?grep=`: the entry's text matches.
    grep: Option<regex::bytes::Regex>,
    /// `?exclude=`: the entry's text does not match.
    exclude: Option<regex::bytes::Regex>,
}

impl Filter {
    pub(super) fn from_uri(uri: &Uri) -> Result<Filter, Refusal> {
        let level = min_level(uri)?;
        let target = match query_param(uri, "target") {
            None => None,
            Some(target) if !target.is_empty() && target.len() <= 256 => {
                Some(Arc::from(target.as_ref()))
            }
            Some(_) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "target must be a target name like my_app::db (1 to 256 bytes)",
                ))
            }
        };
        let grep = query_param(uri, "grep")
            .map(|text| pattern("grep", &text))
            .transpose()?;
        let exclude = query_param(uri, "exclude")
            .map(|text| pattern("exclude", &text))
            .transpose()?;
        Ok(Filter {
            level,
            target,
            grep,
            exclude,
        })
    }

    /// Whether it keeps everything.
    pub(super) fn is_none(&self) -> bool {
        self.level.is_none()
            && self.target.is_none()
            && self.grep.is_none()
            && self.exclude.is_none()
    }

    pub(super) fn keeps(&self, entry: &Entry) -> bool {
        let level = match (self.level, entry.level()) {
            (Some(least), Some(level)) => level >= least,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let target = match (&self.target, entry.target()) {
            // An entry whose target could not be recorded is no target's.
            (Some(_), Some(crate::target::UNRECORDED)) => false,
            (Some(wanted), Some(target)) => target
                .strip_prefix(wanted.as_ref())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::")),
            _ => true,
        };
        // Patterns see the text without its line ending, so that `$` ends the line.
        let text = entry.strip_suffix(b"\n").unwrap_or(entry);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        level
            && target
            && self.grep.as_ref().map_or(true, |grep| grep.is_match(text))
            && self
                .exclude
                .as_ref()
                .map_or(true, |exclude| !exclude.is_match(text))
    }

    /// The sequence number of the first of the newest `n` entries of `entries` it keeps (the
    /// next one, `next_seq`, for `n` = 0; the first it keeps when it keeps fewer).
    pub(super) fn first_of_last(&self, entries: &[Entry], n: usize, next_seq: u64) -> u64 {
        let mut first = next_seq;
        let mut kept = 0;
        for entry in entries.iter().rev() {
            if kept == n {
                break;
            }
            if self.keeps(entry) {
                kept += 1;
                first = entry.seq();
            }
        }
        first
    }
}

/// The first value of query parameter `name`, percent-decoded.
pub(super) fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<Cow<'a, str>> {
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// A host name as compared: lower case, without port, brackets or a final dot.
pub(super) fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal: "[::1]:8080".
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            // "name:port", but not a bare IPv6 address with colons of its own.
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The name in a `Host` value (or a request target's authority), lower case, without port,
/// brackets or a final dot; `None` unless it is well formed (RFC 3986): an IPv6 literal in
/// brackets, or a name or IPv4 address of letters, digits, `-`, `.` and `_`, then an optional
/// `:` and port digits. So `[::1]evil.com`, `[::1]@evil.com` or `localhost:80x` name no host.
fn host_name(host: &str) -> Option<String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            inside.parse::<std::net::Ipv6Addr>().ok()?;
            (inside, after)
        }
        None => {
            let (name, port) = host.find(':').map_or((host, ""), |at| host.split_at(at));
            let name_bytes = name.bytes();
            let well_formed = !name.is_empty()
                && name_bytes
                    .into_iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !well_formed {
                return None;
            }
            (name, port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.is_empty() || digits.parse::<u16>().is_ok());
    // No empty label: `..localhost` names nothing.
    let labels_ok = !name.starts_with('.') && !name.contains("..");
    (port_ok && labels_ok).then(|| name.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether `name` (from [`host_name`]) is a loopback name or address, or allowed.
fn host_allowed(allowed: &[String], name: &str) -> bool {
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    allowed
        .iter()
        .any(|allowed| allowed == "*" || allowed == name)
}

/// Whether a page of `origin` may follow: it was served by this server (over `http`, the only
/// scheme memtail speaks, and the same host), or it is allowed.
fn origin_allowed(allowed: &[String], origin: &str, host: &str) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let same_origin = origin
        .strip_prefix("http://")
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host.trim()));
    same_origin
        || allowed
            .iter()
            .any(|allowed| allowed == "*" || *allowed == origin)
}

fn carries_token(headers: &HeaderMap, uri: &Uri, token: &str) -> bool {
    let bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| {
            let (scheme, credentials) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| credentials.trim())
        })
        .any(|credentials| same_secret(credentials, token));
    bearer || query_param(uri, "token").is_some_and(|given| same_secret(&given, token))
}

/// Compares without stopping at the first difference, so that the time taken does not tell how
/// much of a guess was right.
fn same_secret(given: &str, token: &str) -> bool {
    let (given, token) = (given.as_bytes(), token.as_bytes());
    if given.len() != token.len() {
        return false;
    }
    given
        .iter()
        .zip(token)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "app.localhost",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:8080",
            "localhost.",
        ] {
            assert!(allowed(&[], host), "{host}");
        }
        for host in [
            "evil.com",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "",
        ] {
            assert!(!allowed(&[], host), "{host}");
        }
        assert!(allowed(&["logs.internal".into()], "Logs.Internal:443"));
        assert!(allowed(&["*".into()], "anything"));
    }

    fn allowed(hosts: &[String], host: &str) -> bool {
        host_name(host).is_some_and(|name| host_allowed(hosts, &name))
    }

    #[test]
    fn malformed_hosts_name_nothing() {
        for host in [
            "[::1]evil.com",
            "[::1]@evil.com:80",
            "127.0.0.1@evil.com",
            "localhost:80x",
            "localhost:123456",
            "localhost:99999",
            "..localhost",
            ".localhost",
            "[::1",
            "[evil.com]",
            "local host",
            "localhost/",
            ":80",
        ] {
            assert_eq!(host_name(host), None, "{host}");
        }
        assert_eq!(host_name("[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(host_name("LocalHost.:80").as_deref(), Some("localhost"));
        assert_eq!(host_name("127.0.0.1:").as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn origins() {
        let host = "127.0.0.1:8080";
        assert!(origin_allowed(&[], "http://127.0.0.1:8080", host));
        assert!(!origin_allowed(&[], "http://127.0.0.1:8081", host));
        assert!(!origin_allowed(&[], "null", host));
        assert!(!origin_allowed(&[], "http://evil.com", host));
        assert!(
            !origin_allowed(&[], "https://127.0.0.1:8080", host),
            "same host, another scheme: another origin"
        );
        let allowed = ["https://admin.internal".to_owned()];
        assert!(origin_allowed(&allowed, "https://admin.internal", host));
        assert!(origin_allowed(&allowed, "HTTPS://ADMIN.INTERNAL/", host));
    }

    #[test]
    fn secrets() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
