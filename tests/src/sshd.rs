//! A real OpenSSH `sshd` for the ssh plugin's tests: a random loopback port, a temporary host
//! key, an `authorized_keys` with two generated client keys (one protected by a passphrase), its
//! own config and a verbose log (to count accepted connections). It logs in as the user the
//! tests run as (root in CI). Torn down — with every session process it forked — on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
        let config = format!(
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
        );
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
