//! A real OpenSSH `sshd` for the ssh plugin's tests: a random loopback port, a temporary host
//! key, an `authorized_keys` with two generated client keys (one protected by a passphrase), its
//! own config and a verbose log (to count accepted connections). It logs in as the user the
//! tests run as (root in CI). Torn down — with every session process it forked — on drop.
//!
//! Also here: an OS user with a password for password authentication ([`password_login`]), and
//! the PATHs the monitoring tests give SSH sessions through `SetEnv` — stand-ins for docker,
//! smartctl and journalctl ([`ToolStubs`]), or only the basic tools ([`BareTools`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The sshd binary the harness runs.
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd and the keys to reach it.
pub struct Sshd {
    dir: tempfile::TempDir,
    /// The loopback port it listens on.
    pub port: u16,
    /// The user to log in as (the one running the tests).
    pub user: String,
    /// `SHA256:…` of its host key.
    pub host_fingerprint: String,
    /// A client key without passphrase.
    pub key: PathBuf,
    /// A client key protected by [`Sshd::passphrase`].
    pub key_encrypted: PathBuf,
    /// The passphrase of [`Sshd::key_encrypted`] (unique per run: a canary).
    pub passphrase: String,
    child: Option<Child>,
}

fn keygen(path: &Path, passphrase: &str, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (install openssh-client; scripts/test.sh does)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// `SHA256:…` of a public key file, as `ssh-keygen -lf` prints it.
pub fn fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .expect("ssh-keygen -lf");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in: {text}"))
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local addr")
        .port()
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh unique token, e.g. for canaries.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{:x}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

impl Sshd {
    /// Generates the keys and config and starts sshd; panics with advice when sshd is missing.
    pub fn start() -> Sshd {
        Self::start_with("")
    }

    /// [`Sshd::start`] with `extra_config` written before the harness's own settings: sshd takes
    /// the first value it reads for each keyword (and only the first `SetEnv` line), so these
    /// lines win. No `Match` block: it would swallow the settings after it.
    pub fn start_with(extra_config: &str) -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} is missing: install openssh-server (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        keygen(&d.join("host_ed25519"), "", "infra-test-host");
        keygen(&d.join("client"), "", "infra-test-client");
        let passphrase = unique("canary-passphrase");
        keygen(&d.join("client_enc"), &passphrase, "infra-test-client-enc");
        let mut authorized = std::fs::read_to_string(d.join("client.pub")).unwrap();
        authorized.push_str(&std::fs::read_to_string(d.join("client_enc.pub")).unwrap());
        std::fs::write(d.join("authorized_keys"), authorized).unwrap();
        let port = free_port();
        let mut config = extra_config.to_string();
        if !config.is_empty() && !config.ends_with('\n') {
            config.push('\n');
        }
        config.push_str(&format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {dir}/host_ed25519\n\
             PidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             UsePAM no\n\
             StrictModes no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             LogLevel VERBOSE\n\
             MaxSessions 64\n\
             MaxStartups 64\n\
             Subsystem sftp internal-sftp\n",
            dir = d.display()
        ));
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // sshd running as root wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_fingerprint = fingerprint(&d.join("host_ed25519.pub"));
        let mut sshd = Sshd {
            port,
            user: whoami(),
            host_fingerprint,
            key: d.join("client"),
            key_encrypted: d.join("client_enc"),
            passphrase,
            child: None,
            dir,
        };
        sshd.spawn();
        sshd
    }

    /// The temporary directory holding keys, config and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let before = self.log().matches("Server listening").count();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sshd");
        self.child = Some(child);
        let started = Instant::now();
        while self.log().matches("Server listening").count() <= before {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("sshd exited with {status}; its log:\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sshd did not start listening in 20 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Connections that authenticated since the start (`Accepted publickey` lines).
    pub fn accepted(&self) -> usize {
        self.log().matches("Accepted publickey for").count()
    }

    /// Connections that authenticated with a password for `user` (`Accepted password` lines).
    pub fn accepted_password(&self, user: &str) -> usize {
        self.log()
            .matches(&format!("Accepted password for {user} "))
            .count()
    }

    /// Generates one more client key (no passphrase) named `name` in [`Sshd::dir`] and adds it
    /// to `authorized_keys` (sshd reads that file at each login: no restart). Returns its path.
    pub fn authorize_new_key(&self, name: &str) -> PathBuf {
        let key = self.dir().join(name);
        keygen(&key, "", &format!("infra-test-{name}"));
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir().join("authorized_keys"))
            .unwrap();
        std::io::Write::write_all(&mut file, public.as_bytes()).unwrap();
        key
    }

    /// A `targets.json` entry: `key` is `"plain"` or `"encrypted"` (the passphrase from
    /// `passphrase_ref`), pinned to the real host key.
    pub fn target(&self, encrypted: bool, passphrase_ref: Option<&str>) -> Value {
        let mut t = json!({
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "key_file": if encrypted { &self.key_encrypted } else { &self.key },
            "host_key": self.host_fingerprint,
        });
        if let Some(p) = passphrase_ref {
            t["passphrase"] = json!(p);
        }
        t
    }

    /// Kills sshd and every process it forked (sessions and their commands) with SIGKILL.
    pub fn kill_all(&mut self) {
        if let Some(mut child) = self.child.take() {
            let mut pids = descendants(child.id());
            pids.push(child.id());
            let _ = Command::new("kill")
                .arg("-9")
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }

    /// Starts sshd again on the same port with the same keys.
    pub fn restart(&mut self) {
        self.kill_all();
        self.spawn();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Every process below `root` in the process tree (from `/proc/*/stat`).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// Processes whose command line contains `needle` (to check that a killed command is gone).
pub fn processes_matching(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == std::process::id() {
                continue;
            }
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                let text = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if text.contains(needle) {
                    found.push(pid);
                }
            }
        }
    }
    found
}

/// sshd config ([`Sshd::start_with`]) making it listen on `127.0.0.2` … `127.0.0.<n+1>` too,
/// and those host names: distinct endpoints of one server (one TOFU record each). sshd takes
/// at most 16 listen addresses, its own `127.0.0.1` included.
pub fn loopback_aliases(n: u8) -> (String, Vec<String>) {
    assert!(n <= 15, "sshd listens on at most 16 addresses");
    let hosts: Vec<String> = (2..n + 2).map(|i| format!("127.0.0.{i}")).collect();
    let config = hosts
        .iter()
        .map(|h| format!("ListenAddress {h}\n"))
        .collect();
    (config, hosts)
}

/// The OS user the password-authentication tests log in as.
pub const PASSWORD_USER: &str = "infra-ssh-test";

/// `(user, password)` for password logins: [`PASSWORD_USER`], created when missing (home
/// directory, `/bin/sh`), with a fresh unique password (a canary) set once per test process.
/// `Err(why)` when that cannot be done: creating users and setting passwords needs root. An
/// sshd for it needs `PasswordAuthentication yes` ([`Sshd::start_with`]).
pub fn password_login() -> Result<(String, String), String> {
    static LOGIN: OnceLock<Result<(String, String), String>> = OnceLock::new();
    LOGIN
        .get_or_init(|| {
            if whoami() != "root" {
                return Err(format!(
                    "running as '{}', not root: cannot create user {PASSWORD_USER} or set its password",
                    whoami()
                ));
            }
            let exists = Command::new("id")
                .arg(PASSWORD_USER)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("id: {e}"))?
                .success();
            if !exists {
                let out = Command::new("useradd")
                    .args(["-m", "-s", "/bin/sh", PASSWORD_USER])
                    .output()
                    .map_err(|e| format!("useradd: {e}"))?;
                // A parallel test process may have created it in the meantime.
                if !out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("exists")
                {
                    return Err(format!(
                        "useradd {PASSWORD_USER}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            let password = unique("canary-ssh-password");
            let mut child = Command::new("chpasswd")
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("chpasswd: {e}"))?;
            std::io::Write::write_all(
                child.stdin.as_mut().expect("piped stdin"),
                format!("{PASSWORD_USER}:{password}\n").as_bytes(),
            )
            .map_err(|e| format!("chpasswd stdin: {e}"))?;
            let out = child
                .wait_with_output()
                .map_err(|e| format!("chpasswd: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "chpasswd: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok((PASSWORD_USER.to_string(), password))
        })
        .clone()
}

/// A temporary directory every user can read and enter (tempfile makes them 0700), so SSH
/// sessions of [`PASSWORD_USER`] can run what is in it.
fn shared_tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    dir
}

/// sshd config ([`Sshd::start_with`]) that keeps bash from sourcing `~/.bashrc` for the commands
/// sshd runs (it does when SHLVL is unset): a user's rc file may prepend to PATH or run slow init
/// (pyenv's, ~200 ms here, swamps what the bench measures).
pub const QUIET_SHELL: &str = "SetEnv SHLVL=1";

/// `SetEnv` for an sshd whose sessions get `path` as PATH, with [`QUIET_SHELL`]'s setting: sshd
/// only reads the first `SetEnv` line, so both go on one.
fn set_env_path(path: &str) -> String {
    format!("{QUIET_SHELL} PATH={path}\n")
}

/// Stand-ins for `docker`, `smartctl` and `journalctl` (shell scripts in
/// `tests/fixtures/monitoring/bin`) that answer the ssh plugin's monitoring commands with
/// output captured in the real tools' formats and record their argv: no Docker engine runs here
/// and the VM has no S.M.A.R.T. disks. Copied to a temporary directory a test may add data to.
pub struct ToolStubs {
    dir: tempfile::TempDir,
}

impl ToolStubs {
    /// Copies the fixtures and the scripts into a fresh, world-readable directory.
    pub fn install() -> ToolStubs {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/monitoring");
        let dir = shared_tempdir("infra-tool-stubs");
        fn copy(from: &Path, to: &Path) {
            for e in std::fs::read_dir(from)
                .expect("fixtures/monitoring")
                .flatten()
            {
                let target = to.join(e.file_name());
                if e.path().is_dir() {
                    std::fs::create_dir_all(&target).unwrap();
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                        .unwrap();
                    copy(&e.path(), &target);
                } else {
                    std::fs::copy(e.path(), &target).unwrap();
                }
            }
        }
        copy(&src, dir.path());
        // Set explicitly: a checkout may not keep the executable bit.
        for tool in ["docker", "smartctl", "journalctl"] {
            let p = dir.path().join("bin").join(tool);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Sessions of any user append to it.
        let log = dir.path().join("argv.log");
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        ToolStubs { dir }
    }

    /// The directory with the fixture data (`docker-logs-<container>.txt`, `journal.jsonl`…).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// sshd config putting the stubs first on PATH, before the system's directories.
    pub fn sshd_config(&self) -> String {
        set_env_path(&format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            self.dir.path().join("bin").display()
        ))
    }

    /// Every invocation so far, one line each: `docker [logs] [--tail] [3] …`.
    pub fn argv(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("argv.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Turns a behaviour switch on or off: `broken-inspect` (docker inspect prints a cut-off
    /// array), `old-smartctl` (smartmontools 6, without -j), `no-journal` (no journal files).
    pub fn switch(&self, name: &str, on: bool) {
        let p = self.dir.path().join(name);
        if on {
            std::fs::write(p, "").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The basic tools the ssh plugin's scripts use (shell, coreutils, awk…), as symlinks in a
/// directory of their own: a PATH of only this lacks docker, smartctl and journalctl whatever
/// the machine has installed.
pub struct BareTools {
    dir: tempfile::TempDir,
}

impl BareTools {
    /// Links each tool found on this machine's PATH (the scripts fall back when a few, such as
    /// `hostname` or `nproc`, are missing).
    pub fn install() -> BareTools {
        let dir = shared_tempdir("infra-bare-tools");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        dirs.extend(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from));
        for tool in [
            "sh", "cat", "awk", "df", "uname", "id", "hostname", "cut", "getconf", "nproc", "head",
            "sleep", "tr",
        ] {
            if let Some(found) = dirs.iter().map(|d| d.join(tool)).find(|p| p.is_file()) {
                std::os::unix::fs::symlink(&found, dir.path().join(tool)).unwrap();
            }
        }
        BareTools { dir }
    }

    /// The directory of symlinks.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// sshd config making this directory the whole PATH.
    pub fn sshd_config(&self) -> String {
        set_env_path(&self.dir.path().display().to_string())
    }
}
