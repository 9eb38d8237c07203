//! A request body streamed from the artifact store (`http.upload`): read in chunks as the
//! server takes them, never held whole in memory; opened again for each attempt.

use tokio::io::AsyncReadExt;

use super::super::infra::host::types::CapError;
use crate::caps::CallCtx;

/// Bytes read from the artifact per chunk of the body.
const CHUNK: usize = 256 * 1024;

/// The artifact `uri` as a request body, with its length (sent as `Content-Length`). A URI
/// that is not one of the store's artifacts is refused, naming the field.
pub(super) async fn artifact_body(
    call: &CallCtx,
    uri: &str,
) -> Result<(u64, reqwest::Body), CapError> {
    let (file, info) = call.shared.artifacts.reader(uri).await.map_err(|e| {
        CapError::NotFound(format!(
            "body: artifact {uri}: {e:#}; give an artifact:// URI this server stored"
        ))
    })?;
    let stream = futures::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), f)))
    });
    Ok((info.size, reqwest::Body::wrap_stream(stream)))
}
