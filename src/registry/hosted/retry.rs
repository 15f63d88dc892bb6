//! When a provider API's answer is worth another attempt, and how long the
//! provider asks to wait first, as each documents its limits. GitHub
//! ("Rate limits for the REST API") answers a primary or secondary rate
//! limit with 403 or 429, naming the wait in `retry-after` (seconds), or
//! with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (Unix seconds);
//! a 403 without those is a refusal. Docker Hub answers its limit with 429
//! and `Retry-After` (seconds; earlier versions of its reference named
//! `X-Retry-After`, a Unix time). Every 5xx is worth another attempt, as in
//! the distribution transport. The number of attempts and the backoff
//! between them are the client's [`RetryPolicy`](super::super::RetryPolicy).

use super::super::transport::retry_after;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest wait an answer can ask for, as the transport caps
/// `Retry-After`: a limit that resets in an hour fails with its message
/// after the policy's attempts instead of holding a job that long.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// What an answer calls for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Final: hand the answer (or its error) to the caller.
    Final,
    /// Worth another attempt, after the wait the API named, if it named one.
    Again(Option<Duration>),
}

/// Whether an answer with `status` and `headers`, received at `now`, is
/// worth another attempt.
pub(super) fn verdict(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Verdict {
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || (status == StatusCode::FORBIDDEN && names_a_wait(headers));
    if limited {
        Verdict::Again(asked_wait(headers, now))
    } else {
        Verdict::Final
    }
}

/// Whether a 403 is a rate limit rather than a refusal.
fn names_a_wait(headers: &HeaderMap) -> bool {
    headers.contains_key("retry-after")
        || header_number(headers, "x-ratelimit-remaining") == Some(0)
}

/// The wait the answer asks for: `Retry-After`, else `X-Retry-After`, else
/// the reset of an exhausted limit; at most [`LONGEST_WAIT`].
fn asked_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(wait) = retry_after(headers) {
        return Some(wait.min(LONGEST_WAIT));
    }
    let until = header_number(headers, "x-retry-after").or_else(|| {
        (header_number(headers, "x-ratelimit-remaining") == Some(0))
            .then(|| header_number(headers, "x-ratelimit-reset"))
            .flatten()
    })?;
    let at = UNIX_EPOCH + Duration::from_secs(until);
    Some(at.duration_since(now).unwrap_or_default().min(LONGEST_WAIT))
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    /// The verdict on `status` with `headers`, received at second 1,000.
    fn judged(status: StatusCode, pairs: &[(&'static str, &str)]) -> Verdict {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        verdict(status, &headers, UNIX_EPOCH + Duration::from_secs(1_000))
    }

    fn again(seconds: u64) -> Verdict {
        Verdict::Again(Some(Duration::from_secs(seconds)))
    }

    #[test]
    fn server_errors_and_429_are_tried_again_with_the_wait_they_name() {
        let cases = [
            (
                StatusCode::SERVICE_UNAVAILABLE,
                vec![],
                Verdict::Again(None),
            ),
            (
                StatusCode::TOO_MANY_REQUESTS,
                vec![("retry-after", "7")],
                again(7),
            ),
            // Hub's earlier reference: a Unix time.
            (
                StatusCode::TOO_MANY_REQUESTS,
                vec![("x-retry-after", "1012")],
                again(12),
            ),
        ];
        for (status, headers, expected) in cases {
            assert_eq!(judged(status, &headers), expected, "{status} {headers:?}");
        }
    }

    #[test]
    fn a_403_is_a_rate_limit_only_when_it_says_so() {
        let spent = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ];
        let left = [
            ("x-ratelimit-remaining", "12"),
            ("x-ratelimit-reset", "1030"),
        ];
        let cases: [(&[(&'static str, &str)], Verdict); 4] = [
            (&[], Verdict::Final),
            (&left, Verdict::Final),
            (&spent, again(30)),
            (&[("retry-after", "2")], again(2)),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                judged(StatusCode::FORBIDDEN, headers),
                expected,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn a_long_wait_is_capped_and_a_past_reset_waits_nothing() {
        let far = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "4600"),
        ];
        let past = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")];
        assert_eq!(
            judged(StatusCode::TOO_MANY_REQUESTS, &far),
            Verdict::Again(Some(LONGEST_WAIT))
        );
        assert_eq!(judged(StatusCode::TOO_MANY_REQUESTS, &past), again(0));
    }

    #[test]
    fn other_client_errors_are_final() {
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
            StatusCode::UNPROCESSABLE_ENTITY,
        ] {
            assert_eq!(
                judged(status, &[("retry-after", "1")]),
                Verdict::Final,
                "{status}"
            );
        }
    }
}
