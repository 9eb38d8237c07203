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
    /// Kills the group when dropped. Declared first so that it drops first, while the leader
    /// still lives and its descendants can still be found through it.
    pub group: Group,
    /// The child (its pipes taken).
    pub child: Child,
    /// Its standard input, when asked for.
    pub stdin: Option<ChildStdin>,
    /// Its standard output.
    pub stdout: ChildStdout,
    /// Its standard error.
    pub stderr: ChildStderr,
}

/// A process group that is killed (SIGKILL) when this is dropped: whatever way the run ends —
/// done, timed out, or its future dropped with the call — nothing it started keeps running.
#[derive(Debug)]
pub struct Group {
    pgid: i32,
    /// The leader was waited for: its pid may be reused, so its tree is no longer walked.
    reaped: bool,
}

impl Group {
    /// The group's id (the program's pid).
    pub fn id(&self) -> i32 {
        self.pgid
    }

    /// Notes that the leader was waited for (see [`Group::kill_all`]).
    pub fn reaped(&mut self) {
        self.reaped = true;
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

impl Group {
    /// Kills the group and every descendant of its leader still linked to it — including those
    /// that left the group with `setsid`/`setpgid` while their parent lived.
    pub fn kill_all(&self) {
        let tree = self.tree();
        self.kill(&tree);
    }

    /// The leader's descendants now (none once the leader was reaped).
    fn tree(&self) -> Vec<i32> {
        if self.reaped {
            Vec::new()
        } else {
            descendants(self.pgid)
        }
    }

    /// SIGKILL to the group and to `tree`.
    fn kill(&self, tree: &[i32]) {
        self.signal(libc::SIGKILL);
        for pid in tree {
            // SAFETY: kill(2) on a pid found as a descendant a moment ago.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Every process whose parent chain leads to `root` (not `root` itself), from `/proc`.
fn descendants(root: i32) -> Vec<i32> {
    if root <= 1 {
        return Vec::new();
    }
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split after
            // the last ')'.
            let ppid = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                });
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
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
    let started = match &spec.ruleset {
        Some(rs) => spawn_confined(&mut cmd, rs),
        None => cmd.spawn(),
    };
    let mut child = started.map_err(|e| {
        Refusal::Failed(format!(
            "cannot start {}: {e}; check that the program exists and that the working directory {} does",
            spec.program.display(),
            spec.cwd.display()
        ))
    })?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(-1);
    let group = Group {
        pgid,
        reaped: false,
    };
    let stdin = child.stdin.take();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Refusal::Failed(
            "the program's output pipes were not opened".into(),
        ));
    };
    Ok(Running {
        group,
        child,
        stdin,
        stdout,
        stderr,
    })
}

/// Starts `cmd` inside `rs` from a thread of its own that enters the ruleset first.
///
/// Landlock and `no_new_privs` bind the calling thread (and what it starts), never the rest of
/// the server, so the thread takes the confinement with it when it ends. Starting the program
/// from there rather than entering the ruleset between `fork` and `exec` also lets the standard
/// library use `posix_spawn` (a `CLONE_VM | CLONE_VFORK` child): the server's page tables — a
/// few thousand mappings, the wasm pools' reservations among them — are not copied for every
/// run only to be thrown away by `exec`.
fn spawn_confined(cmd: &mut tokio::process::Command, rs: &Ruleset) -> std::io::Result<Child> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::scope(|s| {
        s.spawn(|| {
            // The child is registered with the server's runtime, which reaps it.
            let _in_runtime = runtime.enter();
            rs.enter()?;
            cmd.spawn()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the thread starting the program panicked",
            ))
        })
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
        let status = run.child.wait().await;
        // Waited for: its pid may be reused, so the group is killed without walking its tree.
        run.group.reaped();
        status
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
pub async fn stop(child: &mut Child, group: &mut Group, grace: Duration) -> Option<ExitStatus> {
    // The tree is taken while the leader lives: once it is reaped its pid may be reused.
    let tree = group.tree();
    group.signal(libc::SIGTERM);
    let status = tokio::time::timeout(grace, child.wait())
        .await
        .ok()
        .and_then(Result::ok);
    if status.is_some() {
        group.reaped();
    }
    group.kill(&tree);
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
                // `setsid` leaves the process group: the tree walk still finds it.
                format!("setsid sleep 300 & echo $! > {}; wait", pidfile.display()),
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
