//! Reading an answer into memory under a cap counted in bytes as they
//! arrive: the transport's body layer and the provider API clients (AWS,
//! GitHub, Docker Hub) all read this way, below each of them.

use bytes::{Bytes, BytesMut};
use reqwest::Response;

/// A body read up to a cap.
pub(crate) struct Capped {
    pub bytes: Bytes,
    /// False when the body went on past the cap (`bytes` holds the cap's
    /// worth of its beginning).
    pub complete: bool,
}

/// Reads `response`'s body until it ends or more than `limit` bytes have
/// come, whichever is first.
pub(crate) async fn read_at_most(
    mut response: Response,
    limit: usize,
) -> Result<Capped, reqwest::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped {
                bytes: body.freeze(),
                complete: false,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped {
        bytes: body.freeze(),
        complete: true,
    })
}
