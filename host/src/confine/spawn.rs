//! Starting a confined program and ending it: its own process group (so a timeout, a cancelled
//! call or a dropped future kills it and everything it started), the host's environment only,
//! and the Landlock ruleset entered between `fork` and `exec`.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use super::Refusal;
use super::env::Env;
use super::landlock::Ruleset;

/// One program run, fully decided by the host.
#[derive(Debug)]
pub struct Spec {
    /// The file to execute.
    pub program: PathBuf,
    /// Its arguments, as-is.
    pub args: Vec<String>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Its whole environment.
    pub env: Env,
    /// The confinement it enters; `None` only for unsafe grants.
    pub ruleset: Option<Arc<Ruleset>>,
}

/// A started program: its pipes and its process group.
pub struct Running {
    /// The child (its pipes taken).
    pub child: Child,
    /// Its standard input, when asked for.
    pub stdin: Option<ChildStdin>,
    /// Its standard output.
    pub stdout: ChildStdout,
    /// Its standard error.
    pub stderr: ChildStderr,
    /// Kills the group when dropped armed.
    pub group: Group,
}

/// A process group that is killed (SIGKILL) when this is dropped: whatever way the run ends —
/// done, timed out, or its future dropped with the call — nothing it started keeps running.
#[derive(Debug)]
pub struct Group {
    pgid: i32,
}

impl Group {
    /// The group's id (the program's pid).
    pub fn id(&self) -> i32 {
        self.pgid
    }

    /// Sends `sig` to every process of the group.
    pub fn signal(&self, sig: i32) {
        // A pid of 0 or 1 (or none) would make kill(2) signal our own group or every process.
        if self.pgid <= 1 {
            return;
        }
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-self.pgid, sig);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// Starts `spec`: stdin piped when `with_stdin`, else `/dev/null`.
pub fn spawn(spec: &Spec, with_stdin: bool) -> Result<Running, Refusal> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.vars())
        .stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(rs) = spec.ruleset.clone() {
        // SAFETY: the closure runs in the forked child before exec; `enter` makes two raw
        // syscalls and allocates nothing (the ruleset was built in the parent).
        unsafe {
            cmd.pre_exec(move || rs.enter());
        }
    }
    let mut child = cmd.spawn().map_err(|e| {
        Refusal::Failed(format!(
            "cannot start {}: {e}; check that the program exists and that the working directory {} does",
            spec.program.display(),
            spec.cwd.display()
        ))
    })?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(-1);
    let group = Group { pgid };
    let stdin = child.stdin.take();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Refusal::Failed(
            "the program's output pipes were not opened".into(),
        ));
    };
    Ok(Running {
        child,
        stdin,
        stdout,
        stderr,
        group,
    })
}

/// Runs `spec` to its end (no stdin) and returns its status and stdout, at most `max` bytes
/// (more is an error: the caller asked something with a small answer). For the host's own
/// helper runs (reading a config, a URL), never for the plugin's.
pub async fn output(
    spec: &Spec,
    max: usize,
    timeout: Duration,
) -> Result<(ExitStatus, Vec<u8>), Refusal> {
    use tokio::io::AsyncReadExt;
    let what = format!("{} {}", spec.program.display(), spec.args.join(" "));
    let failed = |m: String| Refusal::Failed(format!("`{what}` (run by the host): {m}"));
    let mut run = spawn(spec, false)?;
    let mut out = Vec::new();
    let work = async {
        let mut limited = (&mut run.stdout).take(max as u64 + 1);
        limited.read_to_end(&mut out).await?;
        run.child.wait().await
    };
    let status = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| failed(format!("still running after {} s", timeout.as_secs())))?
        .map_err(|e| failed(e.to_string()))?;
    if out.len() > max {
        return Err(failed(format!("printed over {max} bytes")));
    }
    Ok((status, out))
}

/// Stops a group that ran out of time: TERM, up to `grace` for the leader to go, then KILL.
pub async fn stop(child: &mut Child, group: &Group, grace: Duration) -> Option<ExitStatus> {
    group.signal(libc::SIGTERM);
    let status = tokio::time::timeout(grace, child.wait())
        .await
        .ok()
        .and_then(Result::ok);
    group.signal(libc::SIGKILL);
    match status {
        Some(s) => Some(s),
        None => child.wait().await.ok(),
    }
}

/// How a program ended: its exit code, or the name of the signal that ended it.
pub fn outcome(status: ExitStatus) -> (Option<i32>, Option<String>) {
    match (status.code(), status.signal()) {
        (Some(c), _) => (Some(c), None),
        (None, Some(s)) => (None, Some(signal_name(s))),
        _ => (None, None),
    }
}

/// `SIGKILL` for 9, and so on; `SIG<n>` for a number without a name here.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIG{sig}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    /// Dropping a run — as when the call's future is dropped — kills what it started too.
    #[tokio::test]
    async fn dropping_a_run_kills_its_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let spec = Spec {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
            ],
            cwd: dir.path().into(),
            env: Env::base(dir.path(), dir.path()),
            ruleset: None,
        };
        let run = spawn(&spec, false).unwrap();
        let mut pid = None;
        for _ in 0..500 {
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                pid = Some(p);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = pid.expect("the grandchild started");
        assert!(alive(pid));
        drop(run);
        for _ in 0..500 {
            if !alive(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the grandchild {pid} outlived its dropped run");
    }
}
