//! SFTP actions and `deploy_file`.

use infra_sdk::caps::artifacts;
use infra_sdk::caps::ssh::{self, FileKind, FileStat, StdinSource};
use infra_sdk::prelude::*;
use sha2::Digest;

use crate::args::{Action, SshArgs, sh_quote};
use crate::out::{CommandOutput, FileInfo, SshOutput};

/// Default cap on a download.
const DOWNLOAD_MAX: u64 = 1024 * 1024 * 1024;

fn info(s: FileStat) -> FileInfo {
    FileInfo {
        path: s.path,
        kind: match s.kind {
            FileKind::File => "file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Other => "other",
        }
        .into(),
        size: s.size,
        mode: format!("{:o}", s.mode & 0o7777),
        mtime: s.mtime,
    }
}

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

/// Runs the SFTP actions and `deploy_file`.
pub fn run(args: &SshArgs, ctx: &Ctx, o: &mut SshOutput) -> Result<(), ToolError> {
    let t = &args.target;
    match args.action {
        Action::SftpList => {
            let path = args.path("sftp_list")?;
            o.entries = Some(ssh::sftp_list(t, path)?.into_iter().map(info).collect());
        }
        Action::SftpStat => {
            o.file = Some(info(ssh::sftp_stat(t, args.path("sftp_stat")?)?));
        }
        Action::SftpDownload => {
            let path = args.path("sftp_download")?;
            let a = ssh::sftp_read(t, path, args.max_bytes.unwrap_or(DOWNLOAD_MAX))?;
            o.artifact = Some(a.into());
        }
        Action::SftpUpload => {
            let path = args.path("sftp_upload")?;
            let stat = ssh::sftp_write(
                t,
                path,
                &args.content()?,
                args.mode()?,
                args.mkdirs.unwrap_or(false),
                args.overwrite.unwrap_or(false),
            )?;
            o.file = Some(info(stat));
        }
        Action::DeployFile => {
            let path = args.path("deploy_file")?;
            let content = args.content()?;
            let want = local_sha256(&content)?;
            let before = remote_sha256(t, ctx, path)?;
            let changed = before.as_deref() != Some(want.as_str());
            if changed {
                ssh::sftp_write(
                    t,
                    path,
                    &content,
                    args.mode()?,
                    args.mkdirs.unwrap_or(false),
                    true,
                )?;
                let after = remote_sha256(t, ctx, path)?;
                if after.as_deref() != Some(want.as_str()) {
                    return Err(ToolError::failed(format!(
                        "{path} on target '{t}' has sha256 {} after the upload, expected {want}; the file may be corrupt — deploy again",
                        after.unwrap_or_else(|| "(missing)".into())
                    )));
                }
                if let Some(cmd) = &args.restart_command {
                    let r = crate::probe(t, ctx, cmd, crate::INLINE_MAX)?;
                    let out = CommandOutput::new(cmd, r);
                    let ok = out.exit_code == Some(0);
                    o.restart = Some(out);
                    if !ok {
                        o.changed = Some(true);
                        o.sha256 = Some(want);
                        return Err(ToolError::failed(format!(
                            "{path} was deployed (sha256 verified) but the restart command failed: {}",
                            o.restart.as_ref().map(|r| r.stderr.trim().to_string()).unwrap_or_default()
                        ))
                        .with_detail(json!({"restart": o.restart, "changed": true})));
                    }
                }
            }
            o.file = Some(info(ssh::sftp_stat(t, path)?));
            o.changed = Some(changed);
            o.sha256 = Some(want);
        }
        _ => unreachable!("transfer::run is called for transfer actions"),
    }
    Ok(())
}
