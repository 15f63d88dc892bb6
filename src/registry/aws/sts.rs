//! STS `AssumeRoleWithWebIdentity`: a web identity token (the file EKS
//! mounts, or a CI system's OIDC token) traded for temporary credentials of
//! a role. The call is not signed (the token is the proof), goes to the STS
//! endpoint of the registry's region, and answers in the query protocol's
//! XML, of which four elements are read.

use super::credentials::AwsCredentials;
use super::environment::{AwsEnvironment, Service};
use super::{AwsError, send};
use reqwest::header;
use std::path::PathBuf;

const OPERATION: &str = "AssumeRoleWithWebIdentity";

/// The role to assume and the token that proves who asks.
pub(super) struct WebIdentity {
    pub token_file: PathBuf,
    pub role_arn: String,
    pub session_name: Option<String>,
}

/// Temporary credentials for `request.role_arn`.
pub(super) async fn assume_role_with_web_identity(
    http: &reqwest::Client,
    environment: &AwsEnvironment,
    region: &str,
    request: &WebIdentity,
) -> Result<AwsCredentials, AwsError> {
    let token = std::fs::read_to_string(&request.token_file).map_err(|source| AwsError::Read {
        path: request.token_file.clone(),
        source,
    })?;
    let endpoint = environment.endpoint(Service::Sts, region)?;
    let session = request
        .session_name
        .clone()
        .unwrap_or_else(|| "hoist".to_string());
    let form = [
        ("Action", OPERATION),
        ("Version", "2011-06-15"),
        ("RoleArn", request.role_arn.as_str()),
        ("RoleSessionName", session.as_str()),
        ("WebIdentityToken", token.trim()),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let answer = send(
        http.post(endpoint.clone())
            .header(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body),
        OPERATION,
        &endpoint,
    )
    .await?;
    let text = String::from_utf8_lossy(&answer.body);
    if !answer.status.is_success() {
        return Err(AwsError::Api {
            operation: OPERATION,
            endpoint: endpoint.to_string(),
            status: answer.status.as_u16(),
            code: element(&text, "Code")
                .unwrap_or("unknown error")
                .to_string(),
            message: element(&text, "Message").unwrap_or_default().to_string(),
        });
    }
    parse_credentials(&text).ok_or_else(|| AwsError::Protocol {
        operation: OPERATION,
        endpoint: endpoint.to_string(),
        detail: "the answer holds no AccessKeyId, SecretAccessKey and SessionToken".to_string(),
    })
}

fn parse_credentials(text: &str) -> Option<AwsCredentials> {
    let credentials = element(text, "Credentials")?;
    let mut found = AwsCredentials::new(
        element(credentials, "AccessKeyId")?,
        element(credentials, "SecretAccessKey")?,
        Some(element(credentials, "SessionToken")?),
    );
    found.expires = element(credentials, "Expiration")
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .and_then(|time| u64::try_from(time.timestamp()).ok())
        .map(|seconds| std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds));
    Some(found)
}

/// The text inside the first `<name>…</name>` of `text`. STS's answers are
/// flat, unattributed elements whose values (keys, tokens, dates) hold no
/// markup, so no XML parser is needed for these four.
fn element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let length = text[start..].find(&close)?;
    Some(text[start..start + length].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_credentials_of_an_answer() {
        let answer = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
            <AssumeRoleWithWebIdentityResult><Credentials>\
            <AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
            <SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>\
            </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        let found = parse_credentials(answer).unwrap();
        assert_eq!(found.access_key_id, "ASIAEXAMPLE");
        assert!(found.expires.is_some());
        assert!(parse_credentials("<Error><Code>x</Code></Error>").is_none());
    }
}
