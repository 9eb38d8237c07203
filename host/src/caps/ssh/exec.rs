//! One remote command on a pooled connection.
//!
//! The command runs under a short POSIX prelude in the remote user's shell: it reports the
//! shell's pid (sshd makes each session's shell the leader of its own process group), exports
//! `env` and changes to `cwd`. On timeout — or when the call is abandoned — the host opens a
//! second channel and kills that whole process group (TERM, then KILL), so nothing keeps running
//! on the target. Output is scrubbed of known secrets, kept inline up to `max-output` bytes per
//! stream, and when longer the full stream goes to an artifact.

use std::time::{Duration, Instant};

use russh::ChannelMsg;
use tokio::io::AsyncRead;

use super::super::CallCtx;
use super::super::infra::host::ssh::{ExecRequest, ExecResult};
use super::super::infra::host::types::CapError;
use super::super::output::{Captured, OutputCapture, ended};
use super::pool::Conn;

/// The first line the prelude writes (to stderr, or stdout under a pty): `<MARK> <pid>`.
const MARK: &str = "__infra_exec_pid__";
/// Time kept back from the call's deadline to kill a timed-out command.
const KILL_MARGIN_MS: u64 = 1500;

/// Quotes `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn valid_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The command line actually sent: prelude + the agent's command.
fn wrap(req: &ExecRequest) -> Result<String, CapError> {
    let mut script = format!("printf '{MARK} %s\\n' \"$$\" >&2\n");
    for kv in &req.env {
        if !valid_env_name(&kv.key) {
            return Err(CapError::Invalid(format!(
                "env: '{}' is not a valid variable name (letters, digits, _; not starting with a digit)",
                kv.key
            )));
        }
        script.push_str(&format!("export {}={}\n", kv.key, sh_quote(&kv.value)));
    }
    if let Some(cwd) = &req.cwd {
        // The directory reaches the shell only as one single-quoted word, in `cd` and in the
        // message alike: inside double quotes `$(…)` and backquotes would still run.
        let dir = sh_quote(cwd);
        script.push_str(&format!(
            "cd -- {dir} || {{ printf 'cwd: cannot change to %s\\n' {dir} >&2; exit 126; }}\n"
        ));
    }
    script.push_str(&req.command);
    Ok(script)
}

/// One output stream of the command: the marker line (on the stream that carries it) is taken
/// out, the rest captured.
struct Stream {
    out: OutputCapture,
    /// Bytes before the marker line has been seen (only for the stream that carries it).
    prelude: Option<Vec<u8>>,
    pid: Option<u32>,
}

impl Stream {
    fn new(name: &'static str, max: usize, call: &CallCtx, carries_mark: bool) -> Self {
        Self {
            out: OutputCapture::new(call, format!("full {name} of an ssh command"), max),
            prelude: carries_mark.then(Vec::new),
            pid: None,
        }
    }

    async fn push(&mut self, call: &CallCtx, data: &[u8]) -> Result<(), CapError> {
        let data = match self.prelude.as_mut() {
            None => data.to_vec(),
            Some(pre) => {
                pre.extend_from_slice(data);
                let Some(nl) = pre.iter().position(|b| *b == b'\n') else {
                    if pre.len() > 256 {
                        // Not our line after all: pass everything through.
                        let all = self.prelude.take().unwrap_or_default();
                        return self.out.write(call, &all).await;
                    }
                    return Ok(());
                };
                let line = String::from_utf8_lossy(&pre[..nl]).trim().to_string();
                let rest = pre[nl + 1..].to_vec();
                self.prelude = None;
                match line
                    .find(MARK)
                    .map(|i| line[i + MARK.len()..].trim().to_string())
                {
                    Some(pid) => self.pid = pid.parse().ok(),
                    None => {
                        let mut all = line.into_bytes();
                        all.push(b'\n');
                        all.extend(rest);
                        return self.out.write(call, &all).await;
                    }
                }
                rest
            }
        };
        self.out.write(call, &data).await
    }

    async fn finish(mut self, call: &CallCtx) -> Result<Captured, CapError> {
        if let Some(pre) = self.prelude.take() {
            self.out.write(call, &pre).await?;
        }
        self.out.finish(call).await
    }
}

/// Kills the remote process group `pid` over a fresh channel: TERM, a moment, then KILL.
/// Spelled `kill -SIG -PGID`, without `--`: dash (Debian's `/bin/sh`) rejects `kill -- -PGID`.
pub async fn kill_group(conn: &Conn, pid: u32) -> Result<(), russh::Error> {
    let ch = conn.channel_open_session().await?;
    let cmd = format!(
        "kill -TERM -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; sleep 0.3; kill -KILL -{pid} 2>/dev/null; kill -KILL {pid} 2>/dev/null; true"
    );
    ch.exec(true, cmd).await?;
    let mut ch = ch;
    let wait = async {
        while let Some(msg) = ch.wait().await {
            if matches!(msg, ChannelMsg::ExitStatus { .. } | ChannelMsg::Close) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    Ok(())
}

/// Kills the remote process group when dropped armed: covers a call abandoned mid-command.
struct KillGuard {
    conn: Conn,
    pid: Option<u32>,
    armed: bool,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if let (true, Some(pid)) = (self.armed, self.pid) {
            let conn = self.conn.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = kill_group(&conn, pid).await;
                });
            }
        }
    }
}

/// What went wrong running a command, so the caller can decide about reconnecting.
pub enum ExecError {
    /// The channel could not even be opened: nothing ran; a fresh connection may work.
    Open(russh::Error),
    /// Anything else.
    Cap(CapError),
}

impl From<CapError> for ExecError {
    fn from(e: CapError) -> Self {
        Self::Cap(e)
    }
}

/// Runs `req` on `conn`; with the result, the outcome for the call's audit event.
pub async fn run(
    call: &CallCtx,
    conn: &Conn,
    req: &ExecRequest,
    stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
) -> Result<(ExecResult, String), ExecError> {
    let script = wrap(req)?;
    let started = Instant::now();
    let (timeout_ms, cut_note) = call.command_timeout(req.timeout_ms, KILL_MARGIN_MS);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let lost = |e: &dyn std::fmt::Display| {
        CapError::Failed(format!(
            "the connection to target '{}' was lost during the command ({e}); it may or may not have run to the end; the next call reconnects",
            req.target
        ))
    };

    // A connection that black-holes (no RST, no answer) must not hold the call until keepalive
    // gives up: an open that takes past the deadline counts as a dead connection.
    let channel = match tokio::time::timeout_at(deadline, conn.channel_open_session()).await {
        Ok(r) => r.map_err(ExecError::Open)?,
        Err(_) => return Err(ExecError::Open(russh::Error::ConnectionTimeout)),
    };
    if req.pty {
        channel
            .request_pty(false, "xterm", 200, 50, 0, 0, &[])
            .await
            .map_err(|e| lost(&e))?;
    }
    channel
        .exec(true, script.into_bytes())
        .await
        .map_err(|e| lost(&e))?;
    let (mut reader, writer) = channel.split();
    let stdin_task = tokio::spawn(async move {
        if let Some(mut input) = stdin {
            let _ = writer.data(&mut input).await;
        }
        let _ = writer.eof().await;
        writer
    });

    // Inline output is held in host memory: never more than the policy's capture limit,
    // whatever the plugin asked.
    let limits = call.shared.policy.limits();
    let max = req
        .max_output
        .min(limits.capture_bytes)
        .min(usize::MAX as u64) as usize;
    let mut out = Stream::new("stdout", max, call, req.pty);
    let mut err = Stream::new("stderr", max, call, !req.pty);
    let mut guard = KillGuard {
        conn: conn.clone(),
        pid: None,
        armed: true,
    };
    let mut exit_code = None;
    let mut signal = None;
    let mut refused = false;
    let outcome: Result<(), CapError> = loop {
        let msg = match tokio::time::timeout_at(deadline, reader.wait()).await {
            Err(_) => {
                // The pid line may still be on its way (a slow start): give it a moment.
                let grace = tokio::time::Instant::now() + Duration::from_millis(1000);
                while out.pid.or(err.pid).is_none() {
                    match tokio::time::timeout_at(grace, reader.wait()).await {
                        Ok(Some(ChannelMsg::Data { data })) => out.push(call, &data).await?,
                        Ok(Some(ChannelMsg::ExtendedData { data, ext: 1 })) => {
                            err.push(call, &data).await?
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
                guard.pid = out.pid.or(err.pid);
                guard.armed = false;
                if let Some(pid) = guard.pid {
                    // A task of its own: the kill completes even if this call is abandoned
                    // (the call's outer deadline) while waiting for it.
                    let c = conn.clone();
                    let kill = tokio::spawn(async move { kill_group(&c, pid).await });
                    let _ = tokio::time::timeout(Duration::from_millis(KILL_MARGIN_MS), kill).await;
                }
                stdin_task.abort();
                break Err(CapError::Timeout(format!(
                    "the command on target '{}' was still running after {timeout_ms} ms{} and {}; raise timeout_ms if it needs longer",
                    req.target,
                    cut_note,
                    match guard.pid {
                        Some(p) => format!("was killed (process group {p}, TERM then KILL)"),
                        // The shell never reported its pid (it had not even started): the
                        // channel is closed, but nothing can be said about the process.
                        None => "its process id never arrived, so it could not be killed; the channel was closed — check the target for a leftover process".to_string(),
                    }
                )));
            }
            Ok(m) => m,
        };
        guard.pid = out.pid.or(err.pid);
        match msg {
            Some(ChannelMsg::Data { data }) => out.push(call, &data).await?,
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => err.push(call, &data).await?,
            Some(ChannelMsg::ExitStatus { exit_status }) => exit_code = Some(exit_status as i32),
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                signal = Some(sig_name(&signal_name));
            }
            Some(ChannelMsg::Failure) => refused = true,
            Some(ChannelMsg::Close) => break Ok(()),
            Some(_) => {}
            None => {
                if exit_code.is_some() || signal.is_some() {
                    break Ok(());
                }
                break Err(lost(&"the channel closed without an exit status"));
            }
        }
    };
    guard.armed = outcome.is_err() && exit_code.is_none() && signal.is_none() && guard.armed;
    stdin_task.abort();

    let stdout = out.finish(call).await?;
    let stderr = err.finish(call).await?;
    outcome?;
    if refused && exit_code.is_none() && signal.is_none() {
        return Err(CapError::Failed(format!(
            "target '{}' refused to run the command (exec or pty request denied)",
            req.target
        ))
        .into());
    }
    Ok(ended(
        exit_code,
        signal,
        stdout,
        stderr,
        started.elapsed().as_millis() as u64,
        limits.artifact_bytes,
    ))
}

fn sig_name(s: &russh::Sig) -> String {
    let text = format!("{s:?}");
    match text.strip_prefix("Custom(\"") {
        Some(rest) => rest.trim_end_matches("\")").to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cwd: &str) -> ExecRequest {
        ExecRequest {
            target: "t".into(),
            command: "true".into(),
            stdin: None,
            env: Vec::new(),
            cwd: Some(cwd.into()),
            pty: false,
            timeout_ms: 1000,
            max_output: 1000,
        }
    }

    /// The prelude run by a local `sh`: the same POSIX shell code the target runs.
    #[test]
    fn a_hostile_cwd_is_a_directory_name_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("PWNED");
        let p = planted.display();
        for cwd in [
            format!("/nonexistent/$(touch {p})"),
            format!("/nonexistent/`touch {p}`"),
            format!("/nonexistent/\"; touch {p}; \""),
            format!("/nonexistent/\\\"; touch {p}; echo \\"),
            format!("/nonexistent/'; touch {p}; '"),
            format!("-P/$(touch {p})"),
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(wrap(&request(&cwd)).unwrap())
                .output()
                .unwrap();
            assert!(!planted.exists(), "cwd {cwd:?} ran a command");
            assert_eq!(out.status.code(), Some(126), "{cwd:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("cwd: cannot change to {cwd}\n")),
                "{cwd:?}: {stderr}"
            );
        }
    }
}
