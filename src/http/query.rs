//! What a request's query asks for: where the answer starts (one precedence for every route),
//! what it keeps, how many, and in which format. Parsed once, by the admission.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, Uri};

use super::refusal::{bad_request, refuse, Refusal};
use super::wire::{compile_pattern, parse_duration, PatternError, PATTERN_MAX};
use crate::entry::without_line_end;
use crate::{Entry, Level, LogBuffer};

/// The routes that take a query, with what each takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET /snapshot`: `format` is `text` or `ndjson`; `Last-Event-ID` is not read.
    Snapshot,
    /// `GET /events`: `format` is `text` or `json`.
    Events,
    /// `GET /ws`: no `format`.
    Ws,
}

impl Route {
    fn params(self) -> &'static [&'static str] {
        match self {
            Route::Snapshot | Route::Events => SNAPSHOT_PARAMS,
            Route::Ws => WS_PARAMS,
        }
    }

    /// Whether it streams (and so may resume with `Last-Event-ID`).
    pub(super) fn streams(self) -> bool {
        self != Route::Snapshot
    }
}

/// How an answer is written: `?format=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// The entries' text (the default).
    Text,
    /// `/events?format=json`: each event's data one JSON object.
    Json,
    /// `/snapshot?format=ndjson`: one JSON object a line.
    Ndjson,
}

/// What a request's query asks for.
#[derive(Debug)]
pub(super) struct Query {
    /// Where the answer starts.
    pub(super) begin: Begin,
    /// What it keeps.
    pub(super) filter: Filter,
    /// `?n=`: the newest this many of what it keeps. A stream applies it in [`Begin`] already
    /// (unless it resumes); a snapshot keeps the newest `n` of what it read.
    pub(super) count: Option<usize>,
    pub(super) format: Format,
}

/// Where an answer starts. One rule for every route, first that applies wins:
///
/// 1. `Last-Event-ID: ID` (streams only): after entry `ID`, exactly where the client was;
///    `?n=` does not apply.
/// 2. `?last=DURATION` or `?since=ID` (not both: 400): the first entry appended within the
///    window, or entry `ID`; entries evicted from there on are reported missed.
/// 3. Neither: the retained entries from the oldest, nothing reported missed.
///
/// Then `?n=N` (streams): the newest `N` of the entries the filters keep from there. An `ID` of
/// another buffer (a restarted server), or beyond what this one wrote, is "the log started over":
/// as 3, and said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Begin {
    pub(super) seq: u64,
    /// Whether entries from `seq` on that were evicted are reported missed.
    pub(super) report_missed: bool,
    /// The position asked for is not in this buffer: the answer says so, then gives the
    /// retained entries from the oldest.
    pub(super) restarted: bool,
}

impl Begin {
    /// From the oldest retained entry, nothing reported missed.
    const OLDEST: Begin = Begin {
        seq: 0,
        report_missed: false,
        restarted: false,
    };

    /// Where a follower starts in the ring.
    pub(super) fn position(&self) -> crate::Start {
        if self.report_missed {
            crate::Start::At(self.seq)
        } else {
            crate::Start::Oldest
        }
    }

    /// The sequence number a read from the ring starts at, when it reports what was missed.
    pub(super) fn since(&self) -> Option<u64> {
        self.report_missed.then_some(self.seq)
    }
}

impl Query {
    /// Parses what `uri` (and, for a stream, the `Last-Event-ID` header) asks of `buf` on
    /// `route`: 400 for a value it cannot use. ([`check_params`] comes first.)
    pub(super) fn parse(
        route: Route,
        headers: &HeaderMap,
        uri: &Uri,
        buf: &LogBuffer,
    ) -> Result<Query, Refusal> {
        // A snapshot's `n` is checked first, as it always was; a stream's after its filters.
        let early_count = if route.streams() {
            None
        } else {
            Some(count_param(uri)?)
        };
        let resume = if route.streams() {
            headers.get("last-event-id")
        } else {
            None
        };
        // Entries written so far: the ring's next sequence number.
        let written = buf.shared().len_and_next().1;
        let instance = buf.shared().instance();
        let asked = match resume {
            Some(last) => {
                let last = last.to_str().ok().and_then(parse_position);
                let Some((of, last)) = last else {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "Last-Event-ID must be an event id (INSTANCE-SEQ) or a sequence number",
                    ));
                };
                Some((of, last.saturating_add(1)))
            }
            None => since_param(uri)?,
        };
        let mut begin = match asked {
            None => Begin::OLDEST,
            Some(asked) if !in_buffer(asked, instance, written) => Begin {
                restarted: true,
                ..Begin::OLDEST
            },
            Some((_, seq)) => Begin {
                seq,
                report_missed: true,
                restarted: false,
            },
        };
        // Checked whether or not it applies, so that a bad one is always a 400.
        let window = last_window(buf, uri)?;
        if let (Some(seq), None) = (window, resume) {
            begin = Begin {
                seq,
                report_missed: true,
                restarted: false,
            };
        }
        let filter = Filter::from_uri(uri)?;
        let count = match early_count {
            Some(count) => count,
            None => count_param(uri)?,
        };
        if let (Some(n), None, true) = (count, resume, route.streams()) {
            // The newest `n` (of those the filters keep) from where the stream would start.
            let replay = buf.since(begin.since().unwrap_or(0));
            begin.seq = filter.first_of_last(replay.entries(), n, replay.next_seq());
            begin.report_missed = true;
        }
        let format = format_param(route, uri)?;
        Ok(Query {
            begin,
            filter,
            count,
            format,
        })
    }
}

/// 400 for a query parameter `route` does not take, naming it.
pub(super) fn check_params(route: Route, uri: &Uri) -> Result<(), Refusal> {
    only_params(uri, route.params())
}

/// `?format=`, as `route` takes it.
fn format_param(route: Route, uri: &Uri) -> Result<Format, Refusal> {
    let Some(format) = query_param(uri, "format") else {
        return Ok(Format::Text);
    };
    match (route, format.to_ascii_lowercase().as_str()) {
        (_, "text") => Ok(Format::Text),
        (Route::Events, "json") => Ok(Format::Json),
        (Route::Snapshot, "ndjson") => Ok(Format::Ndjson),
        (Route::Events, _) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "format must be text or json",
        )),
        (Route::Snapshot, _) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "format must be text or ndjson",
        )),
        (Route::Ws, _) => Err(refuse(StatusCode::BAD_REQUEST, "format is not taken here")),
    }
}

/// The query parameters of `/snapshot` and `/events` (`format` takes other values on each).
const SNAPSHOT_PARAMS: &[&str] = &[
    "since", "last", "n", "level", "target", "grep", "exclude", "format", "token",
];
/// The query parameters of `/ws`.
const WS_PARAMS: &[&str] = &[
    "since", "last", "n", "level", "target", "grep", "exclude", "token",
];

/// 400 for a query parameter the route does not take, naming it: a misspelt `?levle=warn` would
/// otherwise answer everything.
fn only_params(uri: &Uri, known: &[&str]) -> Result<(), Refusal> {
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
fn count_param(uri: &Uri) -> Result<Option<usize>, Refusal> {
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

/// Compiles a `?grep=` or `?exclude=` pattern, bounded in size.
fn pattern(name: &str, text: &str) -> Result<regex::bytes::Regex, Refusal> {
    compile_pattern(text).map_err(|error| match error {
        PatternError::Size => bad_request(format!(
            "{name} must be a regular expression of 1 to {PATTERN_MAX} bytes"
        )),
        PatternError::Invalid(why) => bad_request(format!(
            "{name} is not a regular expression memtail takes: {why}"
        )),
    })
}

/// The `last` query parameter (`?last=5m`): the sequence number of the first entry appended
/// within that window. 400 when it is not a duration, when `since` is given too, or when the
/// buffer does not record times.
fn last_window(buf: &LogBuffer, uri: &Uri) -> Result<Option<u64>, Refusal> {
    let Some(text) = query_param(uri, "last") else {
        return Ok(None);
    };
    if query_param(uri, "since").is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "give since or last, not both",
        ));
    }
    let window = parse_duration(&text).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "last must be a duration like 90s, 5m, 2h or 1d (a bare number is seconds)",
        )
    })?;
    let from = std::time::SystemTime::now()
        .checked_sub(window)
        .unwrap_or(std::time::UNIX_EPOCH);
    buf.seq_since_time(from).map(Some).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "this log does not record times, so last cannot be answered \
             (memtail's tracing layer and logger record them; for other writes, \
             memtail::LogBuffer::builder().timestamps(true))",
        )
    })
}

/// The `level` query parameter: the least severe level an answer keeps (entries with no level
/// are left out).
fn min_level(uri: &Uri) -> Result<Option<Level>, Refusal> {
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
        let text = without_line_end(entry);
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

/// The `since` query parameter, if there is one, as a position ([`parse_position`]); 400 when it
/// is not one.
fn since_param(uri: &Uri) -> Result<Option<(Option<u32>, u64)>, Refusal> {
    match query_param(uri, "since") {
        None => Ok(None),
        Some(since) => parse_position(&since).map(Some).ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "since must be an event id (INSTANCE-SEQ) or a sequence number",
            )
        }),
    }
}

/// Whether a position asked for is in the buffer `instance`, which has written `written`
/// entries. One of another instance (a restarted server), or beyond what this buffer ever wrote,
/// is not: the log started over.
fn in_buffer((of, seq): (Option<u32>, u64), instance: u32, written: u64) -> bool {
    of.map_or(true, |of| of == instance) && seq <= written
}

/// A position as clients send it back: `INSTANCE-SEQ` (an event id: the buffer's instance in 8
/// hexadecimal digits, a dash, the entry's sequence number) or a bare `SEQ`, which is taken to be
/// of this buffer.
fn parse_position(text: &str) -> Option<(Option<u32>, u64)> {
    let text = text.trim();
    let decimal = |digits: &str| {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten()
    };
    match text.split_once('-') {
        Some((instance, seq)) => {
            let hex = instance.len() == 8 && instance.bytes().all(|b| b.is_ascii_hexdigit());
            let instance = u32::from_str_radix(instance, 16).ok().filter(|_| hex)?;
            Some((Some(instance), decimal(seq)?))
        }
        None => Some((None, decimal(text)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(parse_position("42"), Some((None, 42)));
        assert_eq!(parse_position(" 0 "), Some((None, 0)));
        assert_eq!(parse_position("00c0ffee-7"), Some((Some(0x00c0_ffee), 7)));
        for bad in [
            "",
            "-",
            "x",
            "+1",
            "-1",
            "c0ffee-7",
            "00c0ffee-",
            "00c0ffee-+7",
            "0xc0ffee-7",
            "00c0ffeg-7",
            "1-2-3",
            "18446744073709551616",
        ] {
            assert_eq!(parse_position(bad), None, "{bad}");
        }
    }
}
