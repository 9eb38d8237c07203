//! Test support for the integration tests in `tests/all` (and the benchmark): locating the real
//! `infra` binary, a throw-away state directory, one-shot calls, an MCP session with a deadline
//! on every exchange ([`mcp`]), the fixture HTTP server, and real sshd and PostgreSQL servers.

pub mod argo;
pub mod data_server;
pub mod demo;
pub mod elicit;
pub mod fixture_server;
pub mod forge;
pub mod git;
pub mod kube;
pub mod mcp;
pub mod pg;
pub mod progress;
pub mod serve;
pub mod sshd;

pub use mcp::{Mcp, call_tool};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Test plugins built for wasm32-wasip2 by this crate's build script: (name, path).
pub const TEST_PLUGINS: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/test_plugins.rs"));

/// The path of a test plugin's `.wasm` by cargo package name (e.g. `hostile`).
pub fn test_plugin(name: &str) -> PathBuf {
    TEST_PLUGINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| PathBuf::from(p))
        .unwrap_or_else(|| panic!("no test plugin '{name}'; add it to tests/build.rs"))
}

/// A built-in plugin's `.wasm` as the host's build script built it (`target/wasm/…`).
pub fn builtin_plugin(name: &str) -> PathBuf {
    let target = infra_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target/")
        .to_path_buf();
    let file = target
        .join("wasm/wasm32-wasip2/release")
        .join(format!("infra_plugin_{name}.wasm"));
    assert!(
        file.is_file(),
        "{} is missing: `cargo build -p infra` builds it",
        file.display()
    );
    file
}

/// The `infra` binary of this build (`target/<profile>/infra`), or `INFRA_BIN` when set: a
/// program outside `target/<profile>/deps` (the benchmark) cannot derive the path from its own.
pub fn infra_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("INFRA_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "INFRA_BIN={} is not a file", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-exe> → target/<profile>/infra
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(format!("infra{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p infra` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A throw-away state directory (`INFRA_HOME`) with helpers to write its files.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    /// An empty state directory: the embedded default policy applies.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `policy.toml` (replaces the embedded default).
    pub fn policy(&self, text: &str) -> &Self {
        std::fs::write(self.path().join("policy.toml"), text).expect("write policy");
        self
    }

    /// Writes `profiles.json`.
    pub fn profiles(&self, v: &Value) -> &Self {
        std::fs::write(self.path().join("profiles.json"), v.to_string()).expect("write profiles");
        self
    }

    /// The whole structured result of a call: `out` itself, or — when it was over the inline cap
    /// (`truncated`) — the result stored in the artifact its note names.
    pub fn whole(&self, out: Value) -> Value {
        if out["truncated"] != true {
            return out;
        }
        let note = out["note"].as_str().expect("a spilled result has a note");
        let uri = note
            .split_whitespace()
            .find(|w| w.starts_with("artifact://"))
            .expect("the note names the artifact");
        let id = uri.trim_start_matches("artifact://");
        let bytes = std::fs::read(self.path().join("artifacts").join(id)).expect("the artifact");
        serde_json::from_slice(&bytes).expect("the artifact is the result's JSON")
    }

    /// Installs a third-party plugin: `plugins/<name>.wasm` with `plugins/<name>.toml`.
    pub fn install_plugin(&self, name: &str, wasm: &Path, manifest: &str) -> &Self {
        let dir = self.path().join("plugins");
        std::fs::create_dir_all(&dir).expect("plugins dir");
        std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).expect("copy plugin");
        std::fs::write(dir.join(format!("{name}.toml")), manifest).expect("write manifest");
        self
    }

    /// An `infra` command with this state directory and a clean environment for the flags.
    /// The compile cache is shared by all tests (`target/test-cache`) so that each new state
    /// directory does not recompile the plugins; tests about the cache set their own.
    pub fn command(&self) -> Command {
        let mut c = Command::new(infra_bin());
        c.env("INFRA_HOME", self.path())
            .env("INFRA_CACHE_DIR", shared_cache_dir())
            .env_remove("INFRA_POLICY")
            .env_remove("INFRA_UNSAFE_LOCAL")
            .env_remove("INFRA_ALLOW_SECRET_EXPORT")
            .env_remove("MCP_PROFILES_DIR");
        c
    }

    /// `infra call TOOL ARGS`: (is_error, output JSON, stderr).
    pub fn call(&self, tool: &str, args: &Value) -> (bool, Value, String) {
        self.call_with(tool, args, |_| {})
    }

    /// Like [`Home::call`], with a chance to change the command (env vars).
    pub fn call_with(
        &self,
        tool: &str,
        args: &Value,
        tweak: impl FnOnce(&mut Command),
    ) -> (bool, Value, String) {
        let mut cmd = self.command();
        cmd.args(["call", tool, &args.to_string()]);
        tweak(&mut cmd);
        let out = cmd.output().expect("run infra call");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("infra call {tool} printed no JSON ({e}); stdout: {stdout}\nstderr: {stderr}")
        });
        (!out.status.success(), value, stderr)
    }

    /// Every file under the state directory, concatenated (for secret-leak checks).
    pub fn all_bytes(&self) -> Vec<u8> {
        fn walk(p: &Path, out: &mut Vec<u8>) {
            if let Ok(entries) = std::fs::read_dir(p) {
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else if let Ok(b) = std::fs::read(&path) {
                        out.extend(b);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out
    }
}

/// `target/test-cache`, the compile cache the tests share.
pub fn shared_cache_dir() -> PathBuf {
    infra_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target/")
        .join("test-cache")
}

/// `base` with the fields of the object `extra` added (replacing those it has).
pub fn with_fields(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// The string at JSON pointer `path` of `v`; panics naming the path and showing `v`.
pub fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {path} in {v}"))
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A value no test run has seen before, long enough for any redactor to take it seriously.
pub fn canary(tag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let a = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let b = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{tag}-{a:016x}{b:016x}")
}

/// Polls `done` every 20 ms for up to a minute (two busy cores); panics with `what` after.
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

/// The complete records of the audit log in the state directory `dir` (a torn last line is
/// left out).
pub fn audit_records(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
