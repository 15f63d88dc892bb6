//! The retry layer of the registry transport: sends a request whose body
//! can be replayed, answers one authentication challenge, and retries 5xx,
//! 429 (honouring `Retry-After`), resets and timeouts with backoff and
//! jitter, as the client's [`RetryPolicy`](super::super::options::RetryPolicy)
//! allows. What is final is decided by the classify layer.

use super::super::error::RegistryError;
use super::{Call, Request, Transport};
use bytes::Bytes;
use reqwest::{Response, StatusCode};

/// What one attempt came to.
enum Outcome {
    /// An answer the caller takes.
    Done(Response),
    /// A challenge was answered: send again at once, not counted.
    Authenticated,
    Failed(RegistryError),
}

impl Transport {
    /// Sends `request`, answering one auth challenge and retrying transient
    /// failures. Returns responses with a 2xx or 3xx status or one listed
    /// in `request.allowed`; anything else becomes an error carrying the
    /// registry's code and message.
    pub async fn send(
        &self,
        call: Call<'_>,
        request: &Request<'_>,
        body: Option<Bytes>,
    ) -> Result<Response, RegistryError> {
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .attempt(call, request.clone(), body.clone().map(reqwest::Body::from))
                .await;
            let error = match self.judge(call, request, result, &mut challenged).await? {
                Outcome::Done(response) => return Ok(response),
                Outcome::Authenticated => {
                    attempt -= 1;
                    continue;
                }
                Outcome::Failed(error) => error,
            };
            if !error.is_transient() {
                return Err(error);
            }
            if attempt >= self.options.retry.attempts {
                return Err(if attempt > 1 {
                    RegistryError::GaveUp {
                        operation: call.context.operation.clone(),
                        target: call.context.target.clone(),
                        attempts: attempt,
                        source: Box::new(error),
                    }
                } else {
                    error
                });
            }
            let delay = self.options.retry.delay(attempt, error.retry_after());
            tracing::warn!(
                "{}; retrying in {:.1}s (attempt {} of {})",
                error,
                delay.as_secs_f64(),
                attempt + 1,
                self.options.retry.attempts
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Sorts one attempt's result: an answer to hand back, a challenge
    /// answered (once per request), or an error for the retry decision.
    async fn judge(
        &self,
        call: Call<'_>,
        request: &Request<'_>,
        result: Result<Response, RegistryError>,
        challenged: &mut bool,
    ) -> Result<Outcome, RegistryError> {
        let response = match result {
            Ok(response) => response,
            Err(error) => return Ok(Outcome::Failed(error)),
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED
            && !*challenged
            && self.answer_challenge(call, &response).await?
        {
            *challenged = true;
            return Ok(Outcome::Authenticated);
        }
        if status.is_success() || status.is_redirection() || request.allowed.contains(&status) {
            return Ok(Outcome::Done(response));
        }
        Ok(Outcome::Failed(
            self.error_from_response(call, response).await,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::options::{ClientOptions, RetryPolicy};
    use super::super::{Context, Scopes};
    use super::*;
    use reqwest::Method;
    use std::time::Duration;

    fn transport(attempts: u32) -> Transport {
        Transport::new(ClientOptions {
            retry: RetryPolicy {
                attempts,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            },
            credential_environment: Default::default(),
            ..ClientOptions::default()
        })
        .unwrap()
    }

    /// A loopback port nothing listens on: connections are refused.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    fn send_to_closed_port(attempts: u32) -> RegistryError {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let transport = transport(attempts);
        let host = format!("127.0.0.1:{}", closed_port());
        let url = format!("https://{host}/v2/");
        let scopes = Scopes::none();
        let context = Context::new("checking", &host);
        runtime
            .block_on(transport.send(
                Call::new(&host, &scopes, &context),
                &Request::new(Method::GET, &url),
                None,
            ))
            .unwrap_err()
    }

    #[test]
    fn a_refused_connection_is_retried_until_the_policy_gives_up() {
        match send_to_closed_port(3) {
            RegistryError::GaveUp { attempts, .. } => assert_eq!(attempts, 3),
            other => panic!("expected GaveUp, got {other}"),
        }
    }

    #[test]
    fn a_single_attempt_reports_the_failure_itself() {
        let error = send_to_closed_port(1);
        assert!(matches!(error, RegistryError::Transport { .. }), "{error}");
    }
}
