//! Error classification for the registry transport: what a failed
//! connection means (untrusted certificate, not TLS, unknown host, refused,
//! passing) and what a failed answer says (status, the registry's
//! `{"errors":[...]}` code and message, `Retry-After`). The retry layer
//! decides on what this layer returns.

use super::super::capped::read_at_most;
use super::super::error::{Answer, RegistryError};
use super::body::MAXIMUM_ERROR_BODY;
use super::{Call, Context, Transport};
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use std::error::Error as StdError;
use std::time::Duration;

/// The next error down the chain. io::Error's `source()` skips the error it
/// wraps, so that one is visited explicitly.
fn next_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner);
    }
    error.source()
}

/// The rustls error somewhere in `error`'s chain, if any.
fn find_tls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(item) = current {
        if let Some(tls) = item.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = next_error(item);
    }
    None
}

pub(crate) fn is_certificate_error(error: &reqwest::Error) -> bool {
    matches!(
        find_tls_error(error),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    )
}

/// True when the other end answered the TLS handshake with something that is
/// not TLS: most often a registry serving plain HTTP.
pub(crate) fn is_not_tls(error: &reqwest::Error) -> bool {
    matches!(
        find_tls_error(error),
        Some(rustls::Error::InvalidMessage(_))
    )
}

/// True when name resolution said the host does not exist (getaddrinfo's
/// EAI_NONAME or EAI_NODATA), as opposed to failing to ask.
fn is_unknown_host(error: &reqwest::Error) -> bool {
    const ANSWERS: [&str; 3] = [
        "Name or service not known",
        "No address associated with hostname",
        "nodename nor servname provided",
    ];
    has_io_error(error, |io| {
        let message = io.to_string();
        ANSWERS.iter().any(|answer| message.contains(answer))
    })
}

pub(super) fn is_connection_refused(error: &reqwest::Error) -> bool {
    has_io_error(error, |io| {
        io.kind() == std::io::ErrorKind::ConnectionRefused
    })
}

/// Whether an `io::Error` in `error`'s chain of causes satisfies `test`.
fn has_io_error(error: &reqwest::Error, test: impl Fn(&std::io::Error) -> bool) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(item) = current {
        if let Some(io) = item.downcast_ref::<std::io::Error>()
            && test(io)
        {
            return true;
        }
        current = next_error(item);
    }
    false
}

/// What a failed connection to `host` means, as the error to report.
pub(crate) fn transport_error(
    host: &str,
    context: &Context,
    source: reqwest::Error,
) -> RegistryError {
    if is_certificate_error(&source) {
        RegistryError::Certificate {
            host: host.to_string(),
            source,
        }
    } else if is_unknown_host(&source) {
        // The resolver answered that the name does not exist: retrying
        // only delays the error (a resolver that could not be reached
        // is transient and stays a `Transport` error).
        RegistryError::UnknownHost {
            host: host.to_string(),
            source,
        }
    } else if is_not_tls(&source) {
        // Retrying cannot help: the host speaks another protocol.
        RegistryError::NotTls {
            host: host.to_string(),
            source,
        }
    } else {
        RegistryError::Transport {
            operation: context.operation.clone(),
            target: context.target.clone(),
            source,
        }
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date; capped at a minute.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(delay.min(Duration::from_secs(60)))
}

/// The registry's `{"errors":[{"code","message"}]}` body, first entry.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(parsed) => match parsed.errors.into_iter().next() {
            Some(entry) => (entry.code, entry.message),
            None => (None, None),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                (None, None)
            } else {
                (None, Some(text.chars().take(300).collect()))
            }
        }
    }
}

impl Transport {
    /// Turns a failed response into an error with the registry's code and
    /// message. A 401 also teaches the host's challenge, so a caller that
    /// retries (a streamed upload) authenticates next time.
    pub async fn error_from_response(&self, call: Call<'_>, response: Response) -> RegistryError {
        let status = response.status();
        let delay = retry_after(response.headers());
        if status == StatusCode::UNAUTHORIZED {
            let _ = self.answer_challenge(call, &response).await;
        }
        // Only the start of an error body is read: it is for the message.
        let body = read_at_most(response, MAXIMUM_ERROR_BODY)
            .await
            .map(|capped| capped.bytes)
            .unwrap_or_default();
        let (code, message) = parse_error_body(&body);
        let answer = Box::new(Answer {
            status: status.as_u16(),
            code,
            message,
        });
        let context = call.context;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return RegistryError::Unauthorized {
                operation: context.operation.clone(),
                target: context.target.clone(),
                host: call.host.to_string(),
                answer,
                action: if call.scopes.wants_push() {
                    "push to it"
                } else if call.scopes.wants_delete() {
                    "delete from it"
                } else {
                    "pull from it"
                },
            };
        }
        RegistryError::Status {
            operation: context.operation.clone(),
            target: context.target.clone(),
            answer,
            retry_after: delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(60)));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn error_bodies() {
        let (code, message) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}"#,
        );
        assert_eq!(code.as_deref(), Some("MANIFEST_INVALID"));
        assert_eq!(message.as_deref(), Some("manifest invalid"));
        assert_eq!(parse_error_body(b"  "), (None, None));
        assert_eq!(
            parse_error_body(b"bad gateway").1.as_deref(),
            Some("bad gateway")
        );
    }
}
