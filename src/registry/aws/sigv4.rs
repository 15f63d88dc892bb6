//! SigV4 request signing through `aws-sigv4`, the signer the AWS SDK for
//! Rust uses: a request's method, URL, headers and body in, the headers to
//! add (`X-Amz-Date`, `X-Amz-Security-Token`, `Authorization`) out.
//! Checked against the AWS documentation's published test suite.

use super::AwsError;
use super::credentials::AwsCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// What to sign for: the service's signing name and the region.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub service: &'a str,
    pub region: &'a str,
}

/// A header to add to the signed request; `sensitive` for the signature and
/// the session token, which must never be logged.
#[derive(Debug, PartialEq, Eq)]
pub struct SignedHeader {
    pub name: String,
    pub value: String,
    pub sensitive: bool,
}

/// The headers that sign `method url` with `headers` and `body` at `time`.
/// `headers` must hold every header that will be sent and signed, `host`
/// included when the URL's authority is not what the server sees.
pub fn sign_request(
    credentials: &AwsCredentials,
    scope: Scope<'_>,
    time: SystemTime,
    request: (&str, &str),
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<SignedHeader>, AwsError> {
    let (method, url) = request;
    let failed = |reason: String| AwsError::Signing {
        endpoint: url.to_string(),
        reason,
    };
    let identity = credentials.identity();
    let parameters = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| failed(error.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|error| failed(error.to_string()))?;
    let (instructions, _signature) = sign(signable, &parameters)
        .map_err(|error| failed(error.to_string()))?
        .into_parts();
    let (signed, _parameters) = instructions.into_parts();
    Ok(signed
        .iter()
        .map(|header| SignedHeader {
            name: header.name().to_string(),
            value: header.value().to_string(),
            sensitive: header.sensitive(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    //! Cases of the AWS SigV4 test suite
    //! (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
    //! credentials `AKIDEXAMPLE`, region `us-east-1`, service `service`,
    //! 2015-08-30T12:36:00Z, and the `Authorization` each case publishes.
    use super::*;
    use std::time::Duration;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn suite_time() -> SystemTime {
        // 2015-08-30T12:36:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn authorization(
        credentials: &AwsCredentials,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Vec<SignedHeader> {
        sign_request(
            credentials,
            Scope {
                service: "service",
                region: "us-east-1",
            },
            suite_time(),
            (method, url),
            headers,
            b"",
        )
        .unwrap()
    }

    fn value<'a>(headers: &'a [SignedHeader], name: &str) -> &'a str {
        headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    #[test]
    fn get_vanilla() {
        let credentials = AwsCredentials::new("AKIDEXAMPLE", SECRET, None);
        let headers = authorization(
            &credentials,
            "GET",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
        );
        assert_eq!(value(&headers, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            value(&headers, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn post_vanilla() {
        let credentials = AwsCredentials::new("AKIDEXAMPLE", SECRET, None);
        let headers = authorization(
            &credentials,
            "POST",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
        );
        assert!(value(&headers, "authorization").ends_with(
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ));
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        let credentials = AwsCredentials::new("AKIDEXAMPLE", SECRET, None);
        let headers = authorization(
            &credentials,
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            &[("host", "example.amazonaws.com")],
        );
        assert!(value(&headers, "authorization").ends_with(
            "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ));
    }

    #[test]
    fn get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let credentials = AwsCredentials::new("AKIDEXAMPLE", SECRET, Some(token));
        let headers = authorization(
            &credentials,
            "GET",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
        );
        assert_eq!(value(&headers, "x-amz-security-token"), token);
        assert_eq!(
            value(&headers, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        );
        let token_header = headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case("x-amz-security-token"))
            .unwrap();
        assert!(
            token_header.sensitive,
            "the session token is marked sensitive"
        );
    }
}
