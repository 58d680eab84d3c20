//! Who may connect, as axum extractors: the Host and token checks every route makes
//! ([`Checked`]), and for the routes that answer from the ring the route's parameters, the
//! `Origin` (streams), what the query asks and a counted place ([`Admitted`]).

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};

use super::permit::Place;
use super::query::{check_params, query_param, Query, Route};
use super::refusal::{refuse, Refusal};
use super::state::Served;

/// A request that passed the checks every route makes: the host asked for, then the token. A
/// handler that takes it runs only for requests that pass; the others get the refusal.
pub(super) struct Checked;

impl FromRequestParts<Arc<Served>> for Checked {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        served: &Arc<Served>,
    ) -> Result<Checked, Refusal> {
        admit(served, &parts.headers, &parts.uri).map(|_| Checked)
    }
}

/// A route that answers from the ring.
pub(super) trait Answers {
    const ROUTE: Route;
}

/// `GET /snapshot`.
pub(super) struct Snapshot;
/// `GET /events`.
pub(super) struct Events;
/// `GET /ws`.
pub(super) struct Ws;

impl Answers for Snapshot {
    const ROUTE: Route = Route::Snapshot;
}

impl Answers for Events {
    const ROUTE: Route = Route::Events;
}

impl Answers for Ws {
    const ROUTE: Route = Route::Ws;
}

/// A request for an answer from the ring on route `R`, admitted, in this order: [`Checked`];
/// only parameters the route takes; for a stream, an allowed `Origin`; a query it can answer;
/// a free place (a stream's among `max_followers`, a snapshot's among `max_snapshots`), held
/// until the answer is done.
pub(super) struct Admitted<R> {
    pub(super) query: Query,
    pub(super) place: Place,
    route: PhantomData<fn() -> R>,
}

impl<R: Answers> FromRequestParts<Arc<Served>> for Admitted<R> {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        served: &Arc<Served>,
    ) -> Result<Admitted<R>, Refusal> {
        let (headers, uri) = (&parts.headers, &parts.uri);
        let host = admit(served, headers, uri)?;
        check_params(R::ROUTE, uri)?;
        if R::ROUTE.streams() {
            check_origin(served, headers, host)?;
        }
        let query = Query::parse(R::ROUTE, headers, uri, &served.buf)?;
        let place = if R::ROUTE.streams() {
            served.followers.take().ok_or(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many followers (see memtail::http::Config::max_followers)",
            ))?
        } else {
            served.snapshots.take().ok_or(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many snapshots being sent (see memtail::http::Config::max_snapshots)",
            ))?
        };
        Ok(Admitted {
            query,
            place,
            route: PhantomData,
        })
    }
}

/// The checks every route makes: the host asked for, then the token. Returns the host (as
/// sent), for the `Origin` check.
fn admit<'a>(served: &Served, headers: &'a HeaderMap, uri: &'a Uri) -> Result<&'a str, Refusal> {
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

/// 400 for more than one `Origin`, 403 for one that is not allowed; none is allowed (a client
/// that is not a browser).
fn check_origin(served: &Served, headers: &HeaderMap, host: &str) -> Result<(), Refusal> {
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
    Ok(())
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
