//! SFTP actions and `deploy_file`.

use crate::caps::artifacts;
use crate::caps::ssh::{self, StdinSource};
use infra_sdk::prelude::*;
use sha2::Digest;

use crate::args::{Upload, sh_quote};
use crate::out::SshOutput;

/// Default cap on a download.
const DOWNLOAD_MAX: u64 = 1024 * 1024 * 1024;

/// sha256 of the content to upload: computed here for bytes, asked of the store for an artifact.
fn local_sha256(content: &StdinSource) -> Result<String, ToolError> {
    Ok(match content {
        StdinSource::Bytes(b) => hex::encode(sha2::Sha256::digest(b)),
        StdinSource::Artifact(uri) => artifacts::stat(uri)?.sha256,
    })
}

/// sha256 of the remote file, or None when it does not exist.
fn remote_sha256(target: &str, ctx: &Ctx, path: &str) -> Result<Option<String>, ToolError> {
    let cmd = format!(
        "if [ -e {p} ]; then sha256sum -- {p} 2>/dev/null || shasum -a 256 -- {p}; else echo __absent__; fi",
        p = sh_quote(path)
    );
    let r = crate::probe(target, ctx, &cmd, 4096)?;
    let out = String::from_utf8_lossy(&r.stdout);
    if out.trim() == "__absent__" {
        return Ok(None);
    }
    match (r.exit_code, out.split_whitespace().next()) {
        (Some(0), Some(h)) if h.len() == 64 => Ok(Some(h.to_ascii_lowercase())),
        _ => Err(ToolError::failed(format!(
            "cannot compute sha256 of {path} on target '{target}' (needs sha256sum or shasum): {}",
            String::from_utf8_lossy(&r.stderr).trim()
        ))),
    }
}

/// `sftp_list`: the entries of the directory `path`.
pub fn list(t: &str, path: &str) -> Result<Vec<FileInfo>, ToolError> {
    Ok(ssh::sftp_list(t, path)?
        .into_iter()
        .map(FileInfo::from)
        .collect())
}

/// `sftp_stat`: metadata of `path`.
pub fn stat(t: &str, path: &str) -> Result<FileInfo, ToolError> {
    Ok(FileInfo::from(ssh::sftp_stat(t, path)?))
}

/// `sftp_download`: the remote file `path` copied into an artifact of at most `max_bytes`.
pub fn download(t: &str, path: &str, max_bytes: Option<u64>) -> Result<Artifact, ToolError> {
    Ok(ssh::sftp_read(t, path, max_bytes.unwrap_or(DOWNLOAD_MAX))?.into())
}

/// `sftp_upload`: writes the content to `path`, replacing a file there only with `overwrite`.
pub fn upload(
    t: &str,
    path: &str,
    upload: &Upload,
    overwrite: bool,
) -> Result<FileInfo, ToolError> {
    let stat = ssh::sftp_write(
        t,
        path,
        &upload.content()?,
        upload.mode()?,
        upload.mkdirs.unwrap_or(false),
        overwrite,
    )?;
    Ok(FileInfo::from(stat))
}

/// `deploy_file`: replaces `path` with the content when it differs (sha256 verified on the
/// target), then runs `restart` if it changed; fills `o` even when the restart fails.
pub fn deploy(
    t: &str,
    ctx: &Ctx,
    path: &str,
    upload: &Upload,
    restart: Option<&str>,
    o: &mut SshOutput,
) -> Result<(), ToolError> {
    let content = upload.content()?;
    let want = local_sha256(&content)?;
    let before = remote_sha256(t, ctx, path)?;
    let changed = before.as_deref() != Some(want.as_str());
    if changed {
        replace_verified(t, upload, ctx, path, &content, &want, before.is_some())?;
        if let Some(cmd) = restart {
            let r = crate::probe(t, ctx, cmd, crate::INLINE_MAX)?;
            let out = CommandOutput::new(cmd, r);
            let ok = out.exit_code == Some(0);
            o.restart = Some(out);
            if !ok {
                o.changed = Some(true);
                o.sha256 = Some(want);
                return Err(ToolError::failed(format!(
                    "{path} was deployed (sha256 verified) but the restart command failed: {}",
                    o.restart
                        .as_ref()
                        .map(|r| r.stderr.trim().to_string())
                        .unwrap_or_default()
                ))
                .with_detail(json!({"restart": o.restart, "changed": true})));
            }
        }
    }
    o.file = Some(FileInfo::from(ssh::sftp_stat(t, path)?));
    o.changed = Some(changed);
    o.sha256 = Some(want);
    Ok(())
}

/// A temporary name beside `path` (same directory, so the final rename stays on one file system).
fn temp_beside(path: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from WASI random: enough to keep concurrent deploys apart.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(path.as_bytes());
    let tag = h.finish();
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}.infra-{tag:016x}"),
        None => format!(".{path}.infra-{tag:016x}"),
    }
}

/// Uploads `content` next to `path`, checks its sha256 there, then renames it over `path`: the
/// old file stays whole until the new one is verified, and readers never see a partial file.
/// Without an explicit `mode`, an existing file keeps its permission bits.
fn replace_verified(
    t: &str,
    upload: &Upload,
    ctx: &Ctx,
    path: &str,
    content: &StdinSource,
    want: &str,
    existed: bool,
) -> Result<(), ToolError> {
    let mode = match upload.mode()? {
        Some(m) => Some(m),
        None if existed => Some(ssh::sftp_stat(t, path)?.mode & 0o7777),
        None => None,
    };
    let tmp = temp_beside(path);
    let remove_tmp = || {
        let _ = crate::probe(t, ctx, &format!("rm -f -- {}", sh_quote(&tmp)), 1024);
    };
    if let Err(e) = ssh::sftp_write(
        t,
        &tmp,
        content,
        mode,
        upload.mkdirs.unwrap_or(false),
        false,
    ) {
        // A write that failed midway may have left part of the file: take it away, and speak of
        // the path the agent asked for, not of the temporary name.
        remove_tmp();
        let mut e = ToolError::from(e);
        e.message = e.message.replace(&tmp, path);
        return Err(e);
    }
    let after = remote_sha256(t, ctx, &tmp)?;
    if after.as_deref() != Some(want) {
        remove_tmp();
        return Err(ToolError::failed(format!(
            "the upload of {path} to target '{t}' has sha256 {} there, expected {want}; {path} was left as it was — deploy again",
            after.unwrap_or_else(|| "(missing)".into())
        )));
    }
    let r = crate::probe(
        t,
        ctx,
        &format!("mv -f -- {} {}", sh_quote(&tmp), sh_quote(path)),
        4096,
    )?;
    if r.exit_code != Some(0) {
        remove_tmp();
        return Err(ToolError::failed(format!(
            "cannot move the verified upload into place at {path} on target '{t}': {}",
            String::from_utf8_lossy(&r.stderr).trim()
        )));
    }
    Ok(())
}
