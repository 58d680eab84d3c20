//! Who may connect: the Host, token and Origin checks, and the follower count.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::header::{
    AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::sse::Start;
use super::Served;

/// A refusal: a status and a one-line reason, answered in plain text.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    reason: &'static str,
}

pub(super) fn refuse(status: StatusCode, reason: &'static str) -> Refusal {
    Refusal { status, reason }
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

/// The checks every route makes: the `Host` header, then the token.
pub(super) fn admit(served: &Served, headers: &HeaderMap, uri: &Uri) -> Result<(), Refusal> {
    let host = headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()));
    let Some(host) = host else {
        return Err(refuse(StatusCode::FORBIDDEN, "no Host header"));
    };
    if !host_allowed(&served.config.allowed_hosts, host) {
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
    Ok(())
}

/// The checks of the streaming routes: [`admit`], then `Origin`, then where the stream starts,
/// then a free follower place.
pub(super) fn admit_follower(
    served: &Arc<Served>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(FollowerGuard, Start), Refusal> {
    admit(served, headers, uri)?;
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers.get(HOST).and_then(|host| host.to_str().ok());
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
    let start = Start::from_request(headers, uri)?;
    let guard = FollowerGuard::new(served).ok_or(refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many followers (see memtail::http::Config::max_followers)",
    ))?;
    Ok((guard, start))
}

/// One open stream, counted against `max_followers` until dropped.
pub(super) struct FollowerGuard(Arc<Served>);

impl FollowerGuard {
    fn new(served: &Arc<Served>) -> Option<FollowerGuard> {
        let max = served.config.max_followers;
        served
            .followers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()?;
        Some(FollowerGuard(Arc::clone(served)))
    }
}

impl Drop for FollowerGuard {
    fn drop(&mut self) {
        self.0.followers.fetch_sub(1, Ordering::AcqRel);
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

fn host_allowed(allowed: &[String], host: &str) -> bool {
    let name = normalize_host(host);
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    allowed
        .iter()
        .any(|allowed| allowed == "*" || *allowed == name)
}

/// Whether a page of `origin` may follow: it was served by the same host, or it is allowed.
fn origin_allowed(allowed: &[String], origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let same_host = matches!((authority, host), (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host.trim()));
    same_host
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
            assert!(host_allowed(&[], host), "{host}");
        }
        for host in [
            "evil.com",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "",
        ] {
            assert!(!host_allowed(&[], host), "{host}");
        }
        assert!(host_allowed(&["logs.internal".into()], "Logs.Internal:443"));
        assert!(host_allowed(&["*".into()], "anything"));
    }

    #[test]
    fn origins() {
        let host = Some("127.0.0.1:8080");
        assert!(origin_allowed(&[], "http://127.0.0.1:8080", host));
        assert!(!origin_allowed(&[], "http://127.0.0.1:8081", host));
        assert!(!origin_allowed(&[], "null", host));
        assert!(!origin_allowed(&[], "http://evil.com", host));
        assert!(!origin_allowed(&[], "http://evil.com", None));
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
