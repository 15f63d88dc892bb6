//! Where AWS settings come from: the process's `AWS_*` variables and home
//! directory, captured once so tests (and the client) can give their own;
//! which registry hosts are ECR and in which region; and the endpoint of
//! each AWS service hoist calls, the SDK-standard `AWS_ENDPOINT_URL_*`
//! overrides included.

use super::AwsError;
use crate::registry::reference::is_loopback;
use reqwest::Url;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The `AWS_*` variables and the home directory the credential chain reads.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsEnvironment {
    pub variables: BTreeMap<String, String>,
    pub home: Option<PathBuf>,
}

impl fmt::Debug for AwsEnvironment {
    // Names only: the values hold secret keys.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AwsEnvironment")
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("home", &self.home)
            .finish()
    }
}

impl AwsEnvironment {
    /// Every `AWS_*` variable of the process, and `HOME`.
    pub fn from_process() -> Self {
        AwsEnvironment {
            variables: std::env::vars()
                .filter(|(name, _)| name.starts_with("AWS_"))
                .collect(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// The variable `name`, when set and not empty (as the SDKs read them).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub fn region_variable(&self) -> Option<&str> {
        self.get("AWS_REGION")
            .or_else(|| self.get("AWS_DEFAULT_REGION"))
    }

    /// The URL `service` is called at in `region`: `AWS_ENDPOINT_URL_<SERVICE>`,
    /// else `AWS_ENDPOINT_URL`, else the service's regional endpoint. An
    /// override must be https, or plain http to loopback.
    pub fn endpoint(&self, service: Service, region: &str) -> Result<Url, AwsError> {
        let specific = format!("AWS_ENDPOINT_URL_{}", service.variable_suffix());
        let chosen = [specific.as_str(), "AWS_ENDPOINT_URL"]
            .into_iter()
            .find_map(|name| self.get(name).map(|value| (name.to_string(), value)));
        let Some((variable, text)) = chosen else {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            let text = format!("https://{}.{region}.{suffix}/", service.host_prefix());
            return Url::parse(&text).map_err(|error| AwsError::BadEndpoint {
                variable: "the region".to_string(),
                url: text,
                reason: error.to_string(),
            });
        };
        let url = Url::parse(text).map_err(|error| AwsError::BadEndpoint {
            variable: variable.clone(),
            url: text.to_string(),
            reason: error.to_string(),
        })?;
        let host = url.host_str().unwrap_or_default();
        let allowed = match url.scheme() {
            "https" => true,
            "http" => is_loopback(host),
            _ => false,
        };
        if !allowed {
            return Err(AwsError::InsecureEndpoint {
                variable,
                url: text.to_string(),
            });
        }
        Ok(url)
    }
}

/// An AWS service hoist calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Ecr,
    Sts,
}

impl Service {
    /// The signing name, as SigV4's credential scope has it.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecr => "ecr",
            Service::Sts => "sts",
        }
    }

    fn variable_suffix(self) -> &'static str {
        match self {
            Service::Ecr => "ECR",
            Service::Sts => "STS",
        }
    }

    fn host_prefix(self) -> &'static str {
        match self {
            Service::Ecr => "api.ecr",
            Service::Sts => "sts",
        }
    }
}

/// An ECR registry host's account and region, from its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
}

/// The account and region of `host` when it is an ECR registry:
/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (or `ecr-fips`, or China's
/// `amazonaws.com.cn`), with or without a port.
pub fn ecr_host(host: &str) -> Option<EcrHost> {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let name = name.to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let suffix_ok = matches!(
        &labels[4.min(labels.len())..],
        ["amazonaws", "com"] | ["amazonaws", "com", "cn"]
    );
    match labels.as_slice() {
        [account, "dkr", "ecr" | "ecr-fips", region, ..]
            if suffix_ok
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && !region.is_empty() =>
        {
            Some(EcrHost {
                account: account.to_string(),
                region: region.to_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> AwsEnvironment {
        AwsEnvironment {
            variables: pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            home: None,
        }
    }

    #[test]
    fn ecr_hosts_carry_account_and_region() {
        let found = ecr_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(found.account, "123456789012");
        assert_eq!(found.region, "eu-west-1");
        let china = ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn:443").unwrap();
        assert_eq!(china.region, "cn-north-1");
        assert!(ecr_host("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com").is_some());
        for other in [
            "ghcr.io",
            "127.0.0.1:5000",
            "12345.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "123456789012.dkr.ecr.us-east-1.example.com",
        ] {
            assert_eq!(ecr_host(other), None, "{other}");
        }
    }

    #[test]
    fn endpoints_are_regional_unless_overridden() {
        let plain = environment(&[]);
        assert_eq!(
            plain.endpoint(Service::Ecr, "eu-west-1").unwrap().as_str(),
            "https://api.ecr.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            plain.endpoint(Service::Sts, "cn-north-1").unwrap().as_str(),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
        let overridden = environment(&[
            ("AWS_ENDPOINT_URL", "https://all.example/"),
            ("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9000"),
        ]);
        assert_eq!(
            overridden.endpoint(Service::Ecr, "x").unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            overridden.endpoint(Service::Sts, "x").unwrap().as_str(),
            "https://all.example/"
        );
    }

    #[test]
    fn an_override_over_plain_http_elsewhere_is_refused() {
        let insecure = environment(&[("AWS_ENDPOINT_URL_ECR", "http://ecr.example:9000")]);
        let error = insecure.endpoint(Service::Ecr, "us-east-1").unwrap_err();
        assert!(
            matches!(error, AwsError::InsecureEndpoint { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("AWS_ENDPOINT_URL_ECR"),
            "{error}"
        );
    }

    #[test]
    fn debug_shows_variable_names_only() {
        let text = format!(
            "{:?}",
            environment(&[("AWS_SECRET_ACCESS_KEY", "very-secret-value")])
        );
        assert!(text.contains("AWS_SECRET_ACCESS_KEY"), "{text}");
        assert!(!text.contains("very-secret-value"), "{text}");
    }
}
