//! A throw-away PostgreSQL server for the tests: `initdb` into a temporary directory and
//! `postgres` on a random loopback port, torn down (killed and removed) on drop.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster is
//! owned by and run as the `postgres` OS user (the process is spawned with its uid and gid);
//! otherwise as the current user. The superuser `postgres` connects over the Unix socket in the
//! temporary directory with `trust`; TCP on 127.0.0.1 needs a password (scram-sha-256), which is
//! how infra connects.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where a PostgreSQL program lives: PATH, /usr/local/bin, or Debian's
/// /usr/lib/postgresql/<version>/bin (the newest version).
pub fn find_bin(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/local/bin".into());
    dirs.push("/usr/local/pgsql/bin".into());
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        dirs.extend(versions.into_iter().rev().map(|(_, p)| p));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The server programs, found together.
struct Bins {
    initdb: PathBuf,
    postgres: PathBuf,
    psql: PathBuf,
}

fn bins() -> Bins {
    let initdb = find_bin("initdb").expect(
        "initdb not found (PATH, /usr/local/bin, /usr/lib/postgresql/*/bin): install postgresql (scripts/test.sh does)",
    );
    let dir = initdb.parent().expect("bin dir").to_path_buf();
    let sibling = |n: &str| {
        let p = dir.join(n);
        if p.is_file() {
            p
        } else {
            find_bin(n).unwrap_or_else(|| panic!("{n} not found next to {}", initdb.display()))
        }
    };
    Bins {
        postgres: sibling("postgres"),
        psql: sibling("psql"),
        initdb,
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("id postgres");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("running as root needs a `postgres` OS user (the postgresql package creates it)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running PostgreSQL cluster with one password-protected role and database.
pub struct PgServer {
    dir: tempfile::TempDir,
    bins: Bins,
    /// `(uid, gid)` the server runs as, when the tests run as root.
    owner: Option<(u32, u32)>,
    child: Option<Child>,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

impl PgServer {
    /// Initializes a cluster and starts it; panics with the server log when it does not come up.
    pub fn start() -> PgServer {
        let bins = bins();
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = is_root().then(|| (id_of("-u"), id_of("-g")));
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let mut server = PgServer {
            dir,
            bins,
            owner,
            child: None,
            port: free_port(),
        };
        let pwfile = server.dir.path().join("superuser-password");
        std::fs::write(&pwfile, "unused-superuser-password\n").expect("pwfile");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown pwfile");
        }
        let out = server
            .command(&server.bins.initdb)
            .arg("-D")
            .arg(server.data())
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        server.launch();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A command run as the cluster's owner, from the temporary directory.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env_remove("PGPASSWORD")
            .env_remove("PGHOST")
            .env_remove("PGPORT");
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        c
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = self
            .command(&self.bins.postgres)
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=50"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.try_psql("postgres", "SELECT 1").is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "postgres exited ({status}) before it was ready; log:\n{}",
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "postgres not ready after 60 s; log:\n{}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs SQL as the superuser over the Unix socket: the unaligned, tuples-only output.
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = self
            .command(&self.bins.psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// [`PgServer::try_psql`], panicking on failure.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    /// The raw bytes `psql` writes for a `COPY … TO STDOUT` run as the superuser (what an
    /// operator's `psql -c "\\copy … to stdout csv"` would give), to compare exports with.
    pub fn copy_out(&self, database: &str, copy_sql: &str) -> Vec<u8> {
        let out = self
            .command(&self.bins.psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-c", copy_sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {copy_sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Creates a login role with `password` and a database it owns, both named `name`.
    pub fn create_db(&self, name: &str, password: &str) {
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE \"{name}\" LOGIN PASSWORD '{}'",
                password.replace('\'', "''")
            ),
        );
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""),
        );
    }

    /// Stops the server (fast shutdown: open connections are cut).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let started = Instant::now();
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Stops and starts the server on the same port and data: every connection is cut.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Backends connected to `database` as `user`, from `pg_stat_activity`.
    pub fn backends(&self, database: &str, user: &str) -> u64 {
        self.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND usename = '{user}'"
            ),
        )
        .parse()
        .expect("a count")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
