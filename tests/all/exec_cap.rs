//! The `exec` and `git` capabilities through MCP, driven by the `execprobe` test plugin (which
//! forwards any request, as a hostile plugin or a prompt-injected agent would), against real
//! programs: `sh`, `cat`, `git`, a real loopback listener, real files outside the root. Each
//! refusal is checked in the answer and in the audit record.

use std::path::{Path, PathBuf};

use infra_tests::{Home, Mcp, audit_records, canary, contains, test_plugin, wait_for};
use serde_json::{Value, json};

const MANIFEST: &str = include_str!("../plugins/execprobe/plugin.toml");

/// A state directory with `execprobe` installed, a root `work` (writable unless `read_only`)
/// and the grant lines `grant` under `[plugin.execprobe.exec]`.
struct Setup {
    home: Home,
    root: tempfile::TempDir,
    outside: tempfile::TempDir,
}

impl Setup {
    fn new(grant: &str) -> Setup {
        Self::with(grant, "", "")
    }

    /// `programs` adds `[programs]` lines; `more` adds policy text at the end.
    fn with(grant: &str, programs: &str, more: &str) -> Setup {
        let home = Home::new();
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let policy = format!(
            r#"
[roots]
work = {{ path = "{root}", read_only = false }}
locked = {{ path = "{root}", read_only = true }}

[programs]
sh = "/bin/sh"
cat = "/bin/cat"
git = "/usr/bin/git"
{programs}

[plugin.execprobe]
[plugin.execprobe.artifacts]
[plugin.execprobe.exec]
{grant}
{more}
"#,
            root = root.path().display()
        );
        home.policy(&policy)
            .install_plugin("execprobe", &test_plugin("execprobe"), MANIFEST);
        Setup {
            home,
            root,
            outside,
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    async fn mcp(&self) -> Mcp {
        self.home.mcp().await
    }

    /// The capability events of every audited call, in order.
    fn events(&self) -> Vec<Value> {
        audit_records(self.home.path())
            .into_iter()
            .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// The denial events of capability `cap`.
    fn denials(&self, cap: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["cap"] == cap && e["decision"] == "deny")
            .collect()
    }
}

/// A grant of sh, cat and git in root `work`, writable, with no network.
const WRITABLE: &str = r#"programs = ["sh", "cat", "git"]
roots = ["work", "locked"]
read_only = false"#;

async fn run(mcp: &Mcp, args: Value) -> (bool, Value) {
    mcp.call("execprobe", args).await
}

/// `sh -c script` in `work`.
async fn sh(mcp: &Mcp, script: &str, extra: Value) -> (bool, Value) {
    let mut args = json!({"program": "sh", "args": ["-c", script], "root": "work"});
    if let (Some(a), Value::Object(e)) = (args.as_object_mut(), extra) {
        a.extend(e);
    }
    run(mcp, args).await
}

fn kind(out: &Value) -> &str {
    out["error"]["kind"].as_str().unwrap_or("")
}

fn message(out: &Value) -> String {
    out["error"]["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_program_runs_with_argv_as_is_cwd_stdin_and_exit_codes() {
    let s = Setup::new(WRITABLE);
    std::fs::create_dir(s.root().join("sub dir")).unwrap();
    let mcp = s.mcp().await;

    // Arguments reach the program as they were given: spaces, quotes, `$`, globs, no shell.
    let tricky = ["a b", "'q'", "\"dq\"", "$HOME", "*", ""];
    let mut args = vec![
        "-c".to_string(),
        "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done; pwd".into(),
        "sh".into(),
    ];
    args.extend(tricky.iter().map(|s| s.to_string()));
    let (err, out) = run(
        &mcp,
        json!({"program": "sh", "args": args, "root": "work", "cwd": "sub dir"}),
    )
    .await;
    assert!(!err, "{out:#}");
    let want: String = tricky.iter().map(|a| format!("[{a}]\n")).collect();
    let real_root = std::fs::canonicalize(s.root()).unwrap();
    assert_eq!(
        out["stdout"],
        format!("{want}{}/sub dir\n", real_root.display()),
        "{out:#}"
    );
    assert_eq!(out["exit_code"], 0);

    // stdin from bytes; exit codes; stderr.
    let (err, out) = run(
        &mcp,
        json!({"program": "sh", "args": ["-c", "cat; echo oops >&2; exit 7"], "root": "work", "stdin": "from stdin\n"}),
    )
    .await;
    assert!(!err, "{out:#}");
    assert_eq!(out["stdout"], "from stdin\n");
    assert_eq!(out["stderr"], "oops\n");
    assert_eq!(out["exit_code"], 7);

    // A signal is named.
    let (err, out) = sh(&mcp, "kill -TERM $$", json!({})).await;
    assert!(!err, "{out:#}");
    assert_eq!(out["signal"], "SIGTERM", "{out:#}");
    assert!(out["exit_code"].is_null());

    // The environment is the host's: cleared, fixed PATH, a fresh HOME, LANG.
    let (err, out) = sh(&mcp, "env | sort", json!({})).await;
    assert!(!err, "{out:#}");
    let env = out["stdout"].as_str().unwrap();
    assert!(env.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"), "{env}");
    assert!(env.contains("LANG=C.UTF-8\n"), "{env}");
    let home_line = env.lines().find(|l| l.starts_with("HOME=")).unwrap();
    let run_home = PathBuf::from(&home_line[5..]);
    assert!(
        run_home
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("infra-exec-"),
        "{env}"
    );
    assert!(
        !run_home.exists(),
        "the run's home is removed after the run: {}",
        run_home.display()
    );
    assert!(
        !env.contains("INFRA_HOME"),
        "the server's environment does not leak: {env}"
    );
    mcp.close().await;

    let allowed: Vec<Value> = s
        .events()
        .into_iter()
        .filter(|e| e["cap"] == "exec" && e["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 4, "one event per run: {allowed:#?}");
    assert!(
        allowed[1]["target"]
            .as_str()
            .unwrap()
            .starts_with("sh -c 'cat; echo oops >&2; exit 7'"),
        "{allowed:#?}"
    );
    assert_eq!(allowed[1]["detail"], "exit 7");
}

/// True while a process with `pid` exists (and is not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_group_and_long_output_spills_scrubbed() {
    let secret = canary("exec-canary");
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), &secret).unwrap();
    let s = Setup::new(WRITABLE);
    // A profile's token is a secret the host knows (and scrubs) from the start.
    s.home.profiles(
        &json!({"canary": {"type": "http", "base_url": "http://127.0.0.1:9",
        "auth": {"type": "bearer", "token": format!("file:{}", secret_file.path().display())}}}),
    );
    let mcp = s.mcp().await;

    // A child that forks a grandchild sleeping in the background and records its pid in the
    // root; the run times out.
    let (err, out) = sh(
        &mcp,
        "sh -c 'sleep 300 & echo $! > grandchild.pid; wait' & wait",
        json!({"timeout_ms": 1500}),
    )
    .await;
    assert!(err, "{out:#}");
    assert_eq!(kind(&out), "timeout", "{out:#}");
    assert!(message(&out).contains("process group"), "{out:#}");
    let pid: u32 = std::fs::read_to_string(s.root().join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the grandchild to be gone", || !alive(pid)).await;

    // Output over max-output: inline part capped, the whole stream in an artifact, the
    // secret scrubbed from both.
    let script =
        format!("i=0; while [ $i -lt 2000 ]; do echo \"line $i {secret}\"; i=$((i+1)); done");
    let (err, out) = sh(&mcp, &script, json!({"max_output": 1000})).await;
    assert!(!err, "{out:#}");
    assert_eq!(out["stdout_truncated"], true, "{out:#}");
    assert!(out["stdout"].as_str().unwrap().len() <= 1000);
    let uri = out["stdout_artifact"]["uri"].as_str().unwrap().to_string();
    assert!(!contains(out.to_string().as_bytes(), &secret), "{out:#}");
    let (err, art) = mcp
        .call(
            "artifacts",
            json!({"action": "get", "uri": uri, "length": 262_144}),
        )
        .await;
    assert!(!err, "{art:#}");
    let text = art.to_string();
    assert!(
        text.contains("line 1999"),
        "the artifact holds the whole stream"
    );
    assert!(!text.contains(&secret), "the artifact is scrubbed");
    mcp.close().await;
    assert!(
        !contains(&s.home.all_bytes(), &secret),
        "the secret is nowhere in the state directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_programs_roots_and_loader_variables_are_refused_and_audited() {
    let s = Setup::with(
        r#"programs = ["sh"]
roots = ["work"]
env = ["GIT_AUTHOR_*", "LD_*", "PATH", "GIT_SSH_COMMAND"]"#,
        "python = \"/usr/bin/python3\"",
        "",
    );
    let mcp = s.mcp().await;
    let marker = s.outside.path().join("ran");
    let script = format!("touch {}", marker.display());

    // A program the operator defined but the plugin was not granted.
    let (err, out) = run(
        &mcp,
        json!({"program": "cat", "args": ["/etc/hostname"], "root": "work"}),
    )
    .await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    assert!(
        message(&out).contains("[plugin.execprobe.exec] programs"),
        "{out:#}"
    );
    // A program nobody defined, by name and by path.
    for program in ["python", "/usr/bin/python3", "bash"] {
        let (err, out) = run(
            &mcp,
            json!({"program": program, "args": ["-c", "print(1)"], "root": "work"}),
        )
        .await;
        assert!(err && kind(&out) == "denied", "{program}: {out:#}");
    }
    // A root not granted; the whole filesystem without the unsafe grant.
    for root in ["locked", "/", "nowhere"] {
        let (err, out) = sh(&mcp, &script, json!({"root": root})).await;
        assert!(err && kind(&out) == "denied", "{root}: {out:#}");
    }
    // A cwd leaving the root.
    for cwd in ["..", "../..", "/etc", "a/../../x"] {
        let (err, out) = sh(&mcp, &script, json!({"cwd": cwd})).await;
        assert!(err && kind(&out) == "invalid", "{cwd}: {out:#}");
        assert!(message(&out).contains("cwd"), "{out:#}");
    }
    std::os::unix::fs::symlink(s.outside.path(), s.root().join("out")).unwrap();
    let (err, out) = sh(&mcp, &script, json!({"cwd": "out"})).await;
    assert!(err && kind(&out) == "denied", "symlink out: {out:#}");

    // Variables the host sets or that run code: refused even though the grant lists them.
    for var in ["LD_PRELOAD", "PATH", "GIT_SSH_COMMAND"] {
        let (err, out) = sh(&mcp, &script, json!({"env": [[var, "/tmp/evil"]]})).await;
        assert!(err && kind(&out) == "denied", "{var}: {out:#}");
        assert!(message(&out).contains(var), "{out:#}");
    }
    // A variable the grant does not list.
    let (err, out) = sh(&mcp, &script, json!({"env": [["TZ", "UTC"]]})).await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    // A granted one passes.
    let (err, out) = sh(
        &mcp,
        "echo $GIT_AUTHOR_NAME",
        json!({"env": [["GIT_AUTHOR_NAME", "A B"]]}),
    )
    .await;
    assert!(!err && out["stdout"] == "A B\n", "{out:#}");
    mcp.close().await;

    assert!(!marker.exists(), "no refused run ran");
    let denials = s.denials("exec");
    for needle in [
        "LD_PRELOAD",
        "'PATH'",
        "GIT_SSH_COMMAND",
        "'TZ'",
        "program 'cat'",
        "'locked'",
    ] {
        assert!(
            denials
                .iter()
                .any(|d| d["reason"].as_str().unwrap_or("").contains(needle)),
            "a denial naming {needle} is audited: {denials:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha256_pin_refuses_a_swapped_binary() {
    let bin = tempfile::tempdir().unwrap();
    let prog = bin.path().join("tool");
    std::fs::copy("/bin/echo", &prog).unwrap();
    let pin = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&prog).unwrap()))
    };
    let s = Setup::with(
        r#"programs = ["tool"]
roots = ["work"]"#,
        &format!(
            "tool = {{ path = \"{}\", sha256 = \"{pin}\" }}",
            prog.display()
        ),
        "",
    );
    let mcp = s.mcp().await;
    let (err, out) = run(
        &mcp,
        json!({"program": "tool", "args": ["pinned"], "root": "work"}),
    )
    .await;
    assert!(!err && out["stdout"] == "pinned\n", "{out:#}");
    // Swapped after the policy was written: same path, other binary.
    std::fs::remove_file(&prog).unwrap();
    std::fs::copy("/bin/true", &prog).unwrap();
    let (err, out) = run(
        &mcp,
        json!({"program": "tool", "args": ["pinned"], "root": "work"}),
    )
    .await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    assert!(
        message(&out).contains(&pin) && message(&out).contains("sha256sum"),
        "{out:#}"
    );
    // Removed: not found, with advice.
    std::fs::remove_file(&prog).unwrap();
    let (err, out) = run(&mcp, json!({"program": "tool", "root": "work"})).await;
    assert!(err && kind(&out) == "not-found", "{out:#}");
    mcp.close().await;
    assert!(
        s.denials("exec")
            .iter()
            .any(|d| d["reason"].as_str().unwrap().contains("pins")),
        "the pin refusal is audited"
    );
}
