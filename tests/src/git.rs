//! Real git repositories for the repo plugin's tests and the benchmark, made with the machine's
//! own `git` under a neutral environment (no user or system config, a fixed identity and
//! dates): merges, conflicts, renames, binary files, detached HEADs, bare remotes, and a large
//! history built with `git fast-import`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The identity the helpers commit as.
pub const NAME: &str = "Infra Test";
/// Its e-mail address.
pub const EMAIL: &str = "test@infra.invalid";

/// `git` with no user or system config and a fixed identity, in `dir`.
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("LANG", "C.UTF-8")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", NAME)
        .env("GIT_AUTHOR_EMAIL", EMAIL)
        .env("GIT_COMMITTER_NAME", NAME)
        .env("GIT_COMMITTER_EMAIL", EMAIL)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
    c
}

/// Runs `git args` in `dir`; panics with git's stderr when it fails. Returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = command(dir).args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `git args` in `dir` and returns whether it succeeded (for expected conflicts).
pub fn git_status(dir: &Path, args: &[&str]) -> bool {
    command(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run git")
        .success()
}

/// Writes `content` to `dir/rel`, making parent directories.
pub fn write(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
    std::fs::write(p, content).expect("write file");
}

/// A new repository at `dir` (created), on branch `main`, without commits.
pub fn init(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir repo");
    git(dir, &["init", "-q", "-b", "main"]);
    dir.to_path_buf()
}

/// Stages everything and commits with `message`; returns the new HEAD.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    head(dir)
}

/// The full hash HEAD points at.
pub fn head(dir: &Path) -> String {
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// A bare repository at `dir` (created), for pushes.
pub fn init_bare(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir bare");
    git(dir, &["init", "-q", "--bare", "-b", "main"]);
    dir.to_path_buf()
}

/// A repository at `dir` with a history of `commits` commits over `files` files, built with
/// `git fast-import` (seconds, not minutes), checked out: the first commit adds every file
/// (`src/dNN/fNNNNN.txt`, a few lines each), each later one changes three of them.
pub fn large(dir: &Path, files: usize, commits: usize) -> PathBuf {
    init(dir);
    let mut child = command(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    {
        let mut w = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
        let path = |i: usize| format!("src/d{:02}/f{i:05}.txt", i % 100);
        for c in 0..commits {
            let msg = format!("commit {c}");
            writeln!(
                w,
                "commit refs/heads/main\ncommitter {NAME} <{EMAIL}> {} +0000\ndata {}\n{msg}",
                1_767_225_600 + c * 60,
                msg.len()
            )
            .unwrap();
            let changed: Vec<usize> = if c == 0 {
                (0..files).collect()
            } else {
                (0..3).map(|k| (c * 7 + k * 3331) % files).collect()
            };
            for i in changed {
                let body = format!("file {i}\nrevision {c}\nline three\nline four\n");
                writeln!(
                    w,
                    "M 100644 inline {}\ndata {}\n{body}",
                    path(i),
                    body.len()
                )
                .unwrap();
            }
        }
        w.flush().unwrap();
    }
    assert!(
        child.wait().expect("fast-import").success(),
        "fast-import failed"
    );
    git(dir, &["reset", "-q", "--hard", "main"]);
    dir.to_path_buf()
}

/// `known_hosts` text pinning the sshd host key `host_pub` (a `.pub` file) at `127.0.0.1:port`.
pub fn known_hosts(host_pub: &Path, port: u16) -> String {
    let key = std::fs::read_to_string(host_pub).expect("host key .pub");
    let mut parts = key.split_whitespace();
    let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
    format!("[127.0.0.1]:{port} {kind} {blob}\n")
}
