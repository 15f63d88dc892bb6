//! The body layer of the registry transport: every answer read into memory
//! (manifests, indexes, configs, token responses, error bodies, tag and
//! referrers pages) is read with a cap, enforced by counting the bytes as
//! they arrive. `Content-Length` and descriptor sizes are written by the
//! other end, so neither is trusted: a chunked body that never ends stops
//! at the cap. Blobs are not read here; they stream to disk through a
//! reader that stops at the descriptor's size and checks the digest.
//!
//! The caps follow go-containerregistry and containerd (4 MiB manifests)
//! and are far above what a valid answer holds.

use super::super::capped::read_at_most;
use super::super::error::RegistryError;
use super::{Call, Transport, transport_error};
use bytes::Bytes;
use reqwest::Response;

/// A manifest or index, the referrers API's answer included.
pub(crate) const MAXIMUM_MANIFEST: usize = 4 * 1024 * 1024;
/// One page of a tag list (distribution sends at most 1,000 tags of at
/// most 128 characters per page).
pub(crate) const MAXIMUM_TAG_PAGE: usize = 4 * 1024 * 1024;
/// A token service's answer.
pub(crate) const MAXIMUM_TOKEN: usize = 1024 * 1024;
/// An error answer: only its first bytes are read, for the message.
pub(crate) const MAXIMUM_ERROR_BODY: usize = 1024 * 1024;

impl Transport {
    /// The whole body of an answer (`what`: "the manifest"), or an error
    /// naming the URL and `limit` when it goes past `limit` bytes.
    pub async fn read_capped(
        &self,
        call: Call<'_>,
        response: Response,
        limit: usize,
        what: &'static str,
    ) -> Result<Bytes, RegistryError> {
        let url = response.url().to_string();
        let capped = read_at_most(response, limit)
            .await
            .map_err(|source| transport_error(call.host, call.context, source))?;
        if !capped.complete {
            return Err(RegistryError::TooLarge {
                operation: call.context.operation.clone(),
                target: call.context.target.clone(),
                what,
                url,
                limit,
            });
        }
        Ok(capped.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(pieces: Vec<&'static [u8]>, endless: bool) -> Response {
        let finite = futures_util::stream::iter(
            pieces
                .into_iter()
                .map(|piece| Ok::<_, std::io::Error>(Bytes::from_static(piece))),
        );
        let body = if endless {
            let forever = futures_util::stream::repeat_with(|| {
                Ok::<_, std::io::Error>(Bytes::from_static(&[b'x'; 1024]))
            });
            reqwest::Body::wrap_stream(futures_util::StreamExt::chain(finite, forever))
        } else {
            reqwest::Body::wrap_stream(finite)
        };
        Response::from(hyper::Response::new(body))
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_body_within_the_cap_is_read_whole() {
        let capped = block_on(read_at_most(response(vec![b"ab", b"cd"], false), 4)).unwrap();
        assert!(capped.complete);
        assert_eq!(&capped.bytes[..], b"abcd");
    }

    #[test]
    fn an_endless_body_stops_at_the_cap() {
        let capped = block_on(read_at_most(response(vec![b"{"], true), 100_000)).unwrap();
        assert!(!capped.complete);
        assert_eq!(capped.bytes.len(), 100_000);
        assert_eq!(capped.bytes[0], b'{');
    }

    #[test]
    fn one_byte_past_the_cap_is_too_much() {
        let capped = block_on(read_at_most(response(vec![b"abc", b"de"], false), 4)).unwrap();
        assert!(!capped.complete);
        assert_eq!(&capped.bytes[..], b"abcd");
    }

    #[test]
    fn the_limit_error_names_the_url_and_the_limit() {
        let transport = Transport::new(super::super::super::options::ClientOptions {
            credential_environment: Default::default(),
            ..Default::default()
        })
        .unwrap();
        let scopes = super::super::Scopes::none();
        let context = super::super::Context::new("reading manifest", "ghcr.io/app:1");
        let call = Call::new("ghcr.io", &scopes, &context);
        let error = block_on(transport.read_capped(
            call,
            response(vec![b"{"], true),
            MAXIMUM_MANIFEST,
            "the manifest",
        ))
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("ghcr.io/app:1"), "{text}");
        assert!(text.contains(&MAXIMUM_MANIFEST.to_string()), "{text}");
    }
}
