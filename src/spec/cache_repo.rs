//! The spec's `cache-repo`: the registry repository holding the layer
//! cache every runner shares. Checked when the spec is read, so a typo
//! fails with the spec's line and column rather than at the first lookup.

/// Why `text` is not a repository reference without tag or digest
/// (`ghcr.io/acme/cache`, `localhost:5000/cache`, `acme/cache`).
pub(super) fn check(text: &str) -> Result<(), String> {
    if text.contains("://") {
        return Err("give the repository without a scheme, like `ghcr.io/acme/app-cache`".into());
    }
    if text.contains('@') {
        return Err("a repository takes no digest: remove `@...`".into());
    }
    let mut components: Vec<&str> = text.split('/').collect();
    let first = components.first().copied().unwrap_or_default();
    let has_host = components.len() > 1
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host {
        check_host(first)?;
        components.remove(0);
    }
    if components.iter().any(|component| component.contains(':')) {
        return Err("a repository takes no tag: the cache's tags are the layers' keys".into());
    }
    for component in components {
        if !valid_component(component) {
            return Err(format!(
                "`{component}` is not a repository path component: use lowercase letters, \
                 digits and single `.`, `_`, `__` or `-` between them"
            ));
        }
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok = port.is_none_or(|port| !port.is_empty() && port.parse::<u16>().is_ok());
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a registry host (HOST or HOST:PORT)"
        ))
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`, as the
/// distribution spec's repository names are.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() || !is_alphanumeric(bytes[0]) || !is_alphanumeric(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if is_alphanumeric(byte) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !is_alphanumeric(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let dashes = separator.bytes().all(|byte| byte == b'-');
        if !(dashes || separator == "." || separator == "_" || separator == "__") {
            return false;
        }
    }
    true
}

fn is_alphanumeric(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_bad_cache_repo_points_at_its_line_and_column() {
        let text = "output = \"oci:out\"\ncache-repo = \"ghcr.io/acme/cache:v1\"\n";
        let error = crate::spec::Plan::parse(
            std::path::Path::new("project/hoist.toml"),
            text,
            &crate::spec::PlanOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("project/hoist.toml:2:14"), "{error}");
        assert!(
            error.contains("`cache-repo`") && error.contains("no tag"),
            "{error}"
        );
    }

    #[test]
    fn repositories_pass_and_the_rest_says_why() {
        for good in [
            "ghcr.io/acme/app-cache",
            "localhost:5000/cache",
            "acme/cache",
            "cache",
            "registry.example.com:443/a/b__c/d.e",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("https://ghcr.io/acme/cache", "scheme"),
            ("ghcr.io/acme/cache:latest", "no tag"),
            ("ghcr.io/acme/cache@sha256:00", "no digest"),
            ("ghcr.io/Acme/cache", "`Acme`"),
            ("localhost:port/cache", "registry host"),
            ("ghcr.io//cache", "path component"),
        ] {
            let error = check(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
