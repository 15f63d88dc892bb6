//! Paged listings of the distribution API (tags, referrers): the next page
//! is where the answer's `Link: <URL>; rel="next"` header says, and only
//! when that is on the registry's own origin. A listing is the registry's
//! answer: pages another server would add are refused, not merged.

use super::error::RegistryError;
use super::transport::{Call, Transport};
use reqwest::Url;
use reqwest::header::{self, HeaderMap};

/// Pages followed at most: a registry whose `Link` leads in circles stops
/// here instead of looping forever.
pub(super) const MAXIMUM_PAGES: usize = 10_000;

/// The next page of a listing from `headers`, made absolute against
/// `base` (distribution sends a path); a page on another origin than the
/// registry's is an error naming it.
pub(super) fn next_page(
    transport: &Transport,
    call: Call<'_>,
    headers: &HeaderMap,
    base: &str,
) -> Result<Option<String>, RegistryError> {
    let Some(next) = link_next(headers, base) else {
        return Ok(None);
    };
    let own = Url::parse(&next).is_ok_and(|url| transport.is_registry_origin(call.host, &url));
    if !own {
        return Err(RegistryError::ForeignPage {
            operation: call.context.operation.clone(),
            target: call.context.target.clone(),
            url: next,
        });
    }
    Ok(Some(next))
}

/// The target of `Link: <URL>; rel="next"`, made absolute against `base`.
pub(super) fn link_next(headers: &HeaderMap, base: &str) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let (target, parameters) = link.split_once(';')?;
            let is_next = parameters
                .split(';')
                .any(|parameter| matches!(parameter.trim(), "rel=\"next\"" | "rel=next"));
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| {
                if target.starts_with("http://") || target.starts_with("https://") {
                    target.to_string()
                } else {
                    format!("{base}/{}", target.trim_start_matches('/'))
                }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::super::client::ClientOptions;
    use super::super::transport::{Context, Scopes};
    use super::*;
    use reqwest::header::HeaderValue;

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::LINK, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_next_page_is_found_and_made_absolute() {
        let base = "http://127.0.0.1:5000";
        assert_eq!(
            link_next(&link("</v2/app/tags/list?last=b&n=2>; rel=\"next\""), base).as_deref(),
            Some("http://127.0.0.1:5000/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(
            link_next(
                &link("<https://other.example/v2/app/tags/list?last=b>; rel=next"),
                base
            )
            .as_deref(),
            Some("https://other.example/v2/app/tags/list?last=b")
        );
        assert_eq!(
            link_next(
                &link("</first>; rel=\"first\", </v2/app/tags/list?last=c>; rel=\"next\""),
                base
            )
            .as_deref(),
            Some("http://127.0.0.1:5000/v2/app/tags/list?last=c")
        );
        assert_eq!(
            link_next(&link("</v2/app/tags/list?last=b>; rel=\"prev\""), base),
            None
        );
        assert_eq!(link_next(&HeaderMap::new(), base), None);
    }

    #[test]
    fn a_next_page_on_another_origin_is_refused() {
        let transport = Transport::new(ClientOptions {
            credential_environment: Default::default(),
            ..ClientOptions::default()
        })
        .unwrap();
        let scopes = Scopes::none();
        let context = Context::new("listing tags of", "ghcr.io/app");
        let call = Call::new("ghcr.io", &scopes, &context);
        let base = "https://ghcr.io";
        let own = next_page(
            &transport,
            call,
            &link("</v2/app/tags/list?last=b>; rel=next"),
            base,
        );
        assert_eq!(
            own.unwrap().as_deref(),
            Some("https://ghcr.io/v2/app/tags/list?last=b")
        );
        for foreign in [
            "<https://ghcr.io.example/v2/app/tags/list>; rel=next",
            "<http://ghcr.io/v2/app/tags/list>; rel=next",
            "<https://ghcr.io:8443/v2/app/tags/list>; rel=next",
        ] {
            let error = next_page(&transport, call, &link(foreign), base).unwrap_err();
            assert!(
                matches!(error, RegistryError::ForeignPage { .. }),
                "{error}"
            );
            assert!(error.to_string().contains("/v2/app/tags/list"), "{error}");
        }
    }
}
