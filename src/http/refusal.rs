//! A request refused: a status and a one-line reason, answered in plain text.

use std::borrow::Cow;

use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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
pub(super) fn bad_request(reason: String) -> Refusal {
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
