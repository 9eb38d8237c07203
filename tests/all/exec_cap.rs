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
        "sh -c 'sleep 300 & echo $! > grandchild.pid; setsid sleep 301 & echo $! > escaped.pid; wait' & wait",
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
    // One that left the process group with setsid goes too.
    let escaped: u32 = std::fs::read_to_string(s.root().join("escaped.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the setsid grandchild to be gone", || !alive(escaped)).await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confined_program_reaches_nothing_outside_its_roots() {
    let s = Setup::with(
        r#"programs = ["sh", "cat"]
roots = ["work", "locked"]
read_only = false"#,
        "",
        "",
    );
    let secret = canary("outside-canary");
    let outside_file = s.outside.path().join("shadow");
    std::fs::write(&outside_file, &secret).unwrap();
    // The server's own HOME, with a key in ~/.ssh.
    let server_home = tempfile::tempdir().unwrap();
    std::fs::create_dir(server_home.path().join(".ssh")).unwrap();
    let key = server_home.path().join(".ssh/id_ed25519");
    std::fs::write(&key, &secret).unwrap();
    std::fs::write(s.root().join("kept"), "kept\n").unwrap();
    let mcp = s
        .home
        .mcp_with(|c| {
            c.env("HOME", server_home.path());
        })
        .await;

    for path in [&outside_file, &key] {
        let (err, out) = run(
            &mcp,
            json!({"program": "cat", "args": [path], "root": "work"}),
        )
        .await;
        assert!(!err, "{out:#}");
        assert_ne!(out["exit_code"], 0, "{out:#}");
        assert!(
            out["stderr"]
                .as_str()
                .unwrap()
                .contains("Permission denied"),
            "{out:#}"
        );
        assert!(!out.to_string().contains(&secret), "{out:#}");
    }
    // Not even through a symlink planted in the root.
    std::os::unix::fs::symlink(&outside_file, s.root().join("link")).unwrap();
    let (_, out) = run(
        &mcp,
        json!({"program": "cat", "args": ["link"], "root": "work"}),
    )
    .await;
    assert!(
        !out.to_string().contains(&secret) && out["exit_code"] != 0,
        "{out:#}"
    );
    // /etc as a whole is not readable, only the few files programs need.
    let (_, out) = sh(
        &mcp,
        "ls /etc >/dev/null && echo listed; cat /etc/passwd >/dev/null && echo passwd",
        json!({}),
    )
    .await;
    assert_eq!(out["stdout"], "passwd\n", "{out:#}");

    // The writable root takes writes; the read-only root refuses writes and truncation.
    let (_, out) = sh(&mcp, "echo new > written && cat written", json!({})).await;
    assert_eq!(out["stdout"], "new\n", "{out:#}");
    let (_, out) = sh(
        &mcp,
        "echo x > other; true > kept; truncate -s 0 kept; rm -f kept; mkdir d; echo done",
        json!({"root": "locked"}),
    )
    .await;
    assert_eq!(out["stdout"], "done\n", "{out:#}");
    assert!(!s.root().join("other").exists() && !s.root().join("d").exists());
    assert_eq!(
        std::fs::read_to_string(s.root().join("kept")).unwrap(),
        "kept\n"
    );
    // Nor outside, in /tmp.
    let (_, out) = sh(
        &mcp,
        "echo x > /tmp/infra-exec-escape-$$ && echo wrote",
        json!({}),
    )
    .await;
    assert_eq!(out["stdout"], "", "{out:#}");
    mcp.close().await;
}

/// A loopback listener, and python3 trying to connect to it from a confined run.
async fn connect_from(network: bool) -> (Value, bool) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = Setup::with(
        &format!("programs = [\"python\"]\nroots = [\"work\"]\nnetwork = {network}"),
        "python = \"/usr/bin/python3\"",
        "",
    );
    let mcp = s.mcp().await;
    let script = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'hi')\n    print('connected')\nexcept OSError as e:\n    print('refused', e)\n"
    );
    let (err, out) = run(
        &mcp,
        json!({"program": "python", "args": ["-c", script], "root": "work"}),
    )
    .await;
    assert!(!err, "{out:#}");
    mcp.close().await;
    (out, listener.accept().is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_is_refused_unless_the_grant_says_network() {
    let (out, accepted) = connect_from(false).await;
    assert!(
        out["stdout"].as_str().unwrap().starts_with("refused"),
        "{out:#}"
    );
    assert!(!accepted, "the listener saw no connection");
    let (out, accepted) = connect_from(true).await;
    assert_eq!(out["stdout"], "connected\n", "{out:#}");
    assert!(accepted, "with network = true the connection arrives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_landlock_nothing_runs() {
    let s = Setup::new(WRITABLE);
    let marker = s.root().join("ran");
    for abi in ["0", "3"] {
        let mcp = s
            .home
            .mcp_with(|c| {
                c.env("INFRA_TEST_LANDLOCK_ABI", abi);
            })
            .await;
        let (err, out) = sh(&mcp, &format!("touch {}", marker.display()), json!({})).await;
        assert!(err && kind(&out) == "denied", "ABI {abi}: {out:#}");
        assert!(message(&out).contains("never run unconfined"), "{out:#}");
        mcp.close().await;
    }
    assert!(!marker.exists());
    assert_eq!(s.denials("exec").len(), 2, "both refusals audited");
}

/// Runs git in the test process (not confined, the user's own config ignored), panicking on
/// failure; its stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository at `dir` with one commit of `a.txt` on `main`.
fn repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    git(dir, &["add", "a.txt"]);
    git(dir, &["commit", "-q", "-m", "first"]);
}

/// Plants every trick through which git runs code from a repository; each one runs `evil.sh`,
/// which creates `marker`.
fn make_hostile(dir: &Path, marker: &Path) {
    let evil = dir.join("evil.sh");
    std::fs::write(
        &evil,
        format!("#!/bin/sh\ntouch '{}'\ncat\n", marker.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = evil.display();
    let hooks = dir.join(".git/hooks");
    for hook in [
        "pre-commit",
        "commit-msg",
        "post-commit",
        "post-checkout",
        "reference-transaction",
        "post-index-change",
    ] {
        std::fs::write(hooks.join(hook), format!("#!/bin/sh\n'{e}' </dev/null\n")).unwrap();
        std::fs::set_permissions(hooks.join(hook), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        dir.join("included.cfg"),
        format!("[core]\n\tfsmonitor = {e}\n"),
    )
    .unwrap();
    let cfg = format!(
        r#"
[core]
	pager = {e}
	editor = {e}
	sshCommand = {e}
	askPass = {e}
[sequence]
	editor = {e}
[pager]
	log = {e}
	show = {e}
[diff]
	external = {e}
[diff "evil"]
	textconv = {e}
	command = {e}
[filter "evil"]
	clean = {e}
	smudge = {e}
	process = {e}
	required = true
[merge "evil"]
	driver = {e}
[alias]
	st = !{e}
[gpg]
	program = {e}
[commit]
	gpgSign = true
[credential]
	helper = !{e}
[includeIf "gitdir:/"]
	path = {inc}
"#,
        inc = dir.join("included.cfg").display()
    );
    let mut config = std::fs::read_to_string(dir.join(".git/config")).unwrap();
    config.push_str(&cfg);
    std::fs::write(dir.join(".git/config"), config).unwrap();
    std::fs::write(
        dir.join(".gitattributes"),
        "*.txt diff=evil filter=evil merge=evil\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_repository_runs_nothing_through_git() {
    let s = Setup::new(&format!(
        "{WRITABLE}\nenv = [\"GIT_AUTHOR_*\", \"GIT_COMMITTER_*\"]"
    ));
    let dir = s.root().join("hostile");
    repo(&dir);
    let marker = s.root().join("MARKER");
    make_hostile(&dir, &marker);
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();

    // The traps are real: plain git, run here unconfined, springs them.
    let _ = std::process::Command::new("/usr/bin/git")
        .args(["diff"])
        .current_dir(&dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        marker.exists(),
        "the hostile repository's traps work outside infra"
    );
    std::fs::remove_file(&marker).unwrap();

    let mcp = s.mcp().await;
    let cases: &[&[&str]] = &[
        &["status"],
        &["diff"],
        &["diff", "--stat"],
        &["log", "-p"],
        &["-p", "log", "-1"],
        &["show", "HEAD"],
        &["add", "a.txt"],
        &["diff", "--cached"],
        &["commit", "-m", "second"],
        &["st"],
        &["log", "--oneline"],
    ];
    for args in cases {
        let (err, out) = run(
            &mcp,
            json!({"program": "git", "args": args, "root": "work", "cwd": "hostile",
                   "env": [["GIT_AUTHOR_NAME", "a"], ["GIT_AUTHOR_EMAIL", "a@example.com"],
                           ["GIT_COMMITTER_NAME", "c"], ["GIT_COMMITTER_EMAIL", "c@example.com"]]}),
        )
        .await;
        assert!(!err && out["exit_code"] == 0, "git {args:?}: {out:#}");
        assert!(
            !marker.exists(),
            "git {args:?} ran the repository's code: {out:#}"
        );
        if args == &["log", "--oneline"] {
            assert!(
                out["stdout"].as_str().unwrap().contains("second"),
                "the commit was made: {out:#}"
            );
        }
        if args == &["diff"] {
            assert!(
                out["stdout"].as_str().unwrap().contains("+two"),
                "the real diff shows: {out:#}"
            );
        }
    }
    // Options and subcommands that run code by design are refused.
    for args in [
        &["-c", "core.pager=sh", "log"][..],
        &["submodule", "update"],
        &["difftool"],
        &["--exec-path=/tmp", "status"],
        &["log", "--ext-diff", "-p"],
    ] {
        let (err, out) = run(
            &mcp,
            json!({"program": "git", "args": args, "root": "work", "cwd": "hostile"}),
        )
        .await;
        assert!(err && kind(&out) == "denied", "git {args:?}: {out:#}");
    }
    mcp.close().await;
    assert!(!marker.exists());
    assert!(s.denials("exec").len() >= 5);
}

/// `git -C <dir>` works on the repository in `<dir>`: its config is the one neutralised, so a
/// hostile repository nested inside a plain one runs nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_repository_reached_with_dash_c_runs_nothing() {
    let s = Setup::new(WRITABLE);
    let plain = s.root().join("plain");
    repo(&plain);
    let inner = plain.join("inner");
    repo(&inner);
    let marker = s.root().join("MARKER");
    make_hostile(&inner, &marker);
    std::fs::write(inner.join("a.txt"), "two\n").unwrap();
    let _ = std::process::Command::new("/usr/bin/git")
        .args(["-C", "inner", "diff"])
        .current_dir(&plain)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        marker.exists(),
        "the nested repository's traps work outside infra"
    );
    std::fs::remove_file(&marker).unwrap();

    let mcp = s.mcp().await;
    for args in [
        &["-C", "inner", "diff"][..],
        &["-C", "inner", "log", "-p"],
        &["-C", "inner", "st"],
        &["-C", ".", "-C", "inner", "show", "HEAD"],
    ] {
        let (err, out) = run(
            &mcp,
            json!({"program": "git", "args": args, "root": "work", "cwd": "plain"}),
        )
        .await;
        assert!(!err, "git {args:?}: {out:#}");
        assert!(
            !marker.exists(),
            "git {args:?} ran the nested repository's code: {out:#}"
        );
    }
    mcp.close().await;
}

/// The host remembers a repository's config keys between runs; a change to the config (or a
/// repository appearing nearer the working directory) is seen on the next run, never missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_turned_hostile_between_runs_runs_nothing() {
    let s = Setup::new(WRITABLE);
    let dir = s.root().join("quiet");
    repo(&dir);
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/b.txt"), "b\n").unwrap();
    let marker = s.root().join("MARKER");
    // Old enough that the host keeps what it reads (see confine/git_keys.rs).
    std::thread::sleep(std::time::Duration::from_millis(2500));

    let mcp = s.mcp().await;
    let diff =
        |cwd: &'static str| json!({"program": "git", "args": ["diff"], "root": "work", "cwd": cwd});
    for cwd in ["quiet", "quiet/sub", "quiet", "quiet/sub"] {
        let (err, out) = run(&mcp, diff(cwd)).await;
        assert!(!err && out["exit_code"] == 0, "{cwd}: {out:#}");
    }
    // The config rewritten in place, hooks and attributes added: the next runs neutralise it.
    make_hostile(&dir, &marker);
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();
    for cwd in ["quiet", "quiet/sub"] {
        let (err, out) = run(&mcp, diff(cwd)).await;
        assert!(!err, "{cwd}: {out:#}");
        assert!(
            !marker.exists(),
            "git diff in {cwd} ran the changed config's code: {out:#}"
        );
        assert!(out["stdout"].as_str().unwrap().contains("+two"), "{out:#}");
    }
    // A hostile repository made in the working directory itself.
    let sub = dir.join("sub");
    git(&sub, &["init", "-q", "-b", "main"]);
    git(&sub, &["add", "b.txt"]);
    git(&sub, &["commit", "-q", "-m", "b"]);
    make_hostile(&sub, &marker);
    std::fs::write(sub.join("b.txt"), "bee\n").unwrap();
    let (err, out) = run(&mcp, diff("quiet/sub")).await;
    assert!(!err, "{out:#}");
    assert!(
        !marker.exists(),
        "git diff ran the new repository's code: {out:#}"
    );
    assert!(out["stdout"].as_str().unwrap().contains("+bee"), "{out:#}");
    mcp.close().await;
}

/// `run-all` through the probe: each command's `{"ok": result}` or `{"error": {kind, message}}`.
async fn batch(mcp: &Mcp, cmds: Value) -> Vec<Value> {
    let (err, out) = run(mcp, json!({"batch": cmds, "timeout_ms": 30_000})).await;
    assert!(!err, "{out:#}");
    out["results"].as_array().cloned().unwrap()
}

/// A batch's commands run at once, in order of the answer; a hostile agent's batch mixing an
/// ungranted program, a root not granted, a cwd leaving the root (by `..` and by a symlink) and
/// a write outside the root gets each of those refused or confined on its own, every run and
/// every denial audited, while the granted runs go ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_at_once_and_refuses_each_bad_command_alone() {
    let s = Setup::with(WRITABLE, "python = \"/usr/bin/python3\"", "");
    std::os::unix::fs::symlink(s.outside.path(), s.root().join("out")).unwrap();
    let marker = s.outside.path().join("ran");
    let touch = format!("touch '{}'", marker.display());
    // Each waits for the other's file: both finish only if they run at the same time.
    let meet = |me: &str, other: &str| {
        format!(
            "touch {me}; i=0; while [ ! -e {other} ]; do sleep 0.01; i=$((i+1)); [ $i -gt 1000 ] && exit 9; done; echo {me}"
        )
    };
    let mcp = s.mcp().await;
    let results = batch(
        &mcp,
        json!([
            {"program": "sh", "args": ["-c", meet("a", "b")], "root": "work"},
            {"program": "python", "args": ["-c", "open('/tmp/x','w')"], "root": "work"},
            {"program": "sh", "args": ["-c", &touch], "root": "nowhere"},
            {"program": "sh", "args": ["-c", &touch], "root": "work", "cwd": ".."},
            {"program": "sh", "args": ["-c", &touch], "root": "work", "cwd": "out"},
            {"program": "sh", "args": ["-c", &touch], "root": "work"},
            {"program": "sh", "args": ["-c", meet("b", "a")], "root": "work"},
        ]),
    )
    .await;
    mcp.close().await;
    assert_eq!(results.len(), 7, "{results:#?}");
    assert_eq!(results[0]["ok"]["exit_code"], 0, "{results:#?}");
    assert_eq!(results[0]["ok"]["stdout"], "a\n", "{results:#?}");
    assert_eq!(results[6]["ok"]["exit_code"], 0, "{results:#?}");
    assert_eq!(results[6]["ok"]["stdout"], "b\n", "{results:#?}");
    for (i, want) in [(1, "denied"), (2, "denied"), (3, "invalid"), (4, "denied")] {
        assert_eq!(
            results[i]["error"]["kind"], want,
            "command {i}: {results:#?}"
        );
    }
    assert!(
        results[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cwd"),
        "{results:#?}"
    );
    // Granted, but Landlock keeps it inside its root.
    assert_ne!(results[5]["ok"]["exit_code"], 0, "{results:#?}");
    assert!(
        !marker.exists(),
        "no command of the batch wrote outside the root"
    );

    let allowed: Vec<Value> = s
        .events()
        .into_iter()
        .filter(|e| e["cap"] == "exec" && e["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 3, "one event per run: {allowed:#?}");
    let denials = s.denials("exec");
    for needle in ["'python'", "'nowhere'", "cwd: 'out' leads out of root"] {
        assert!(
            denials
                .iter()
                .any(|d| d["reason"].as_str().unwrap_or("").contains(needle)),
            "a denial naming {needle} is audited: {denials:#?}"
        );
    }
}

/// git runs batched with `--no-optional-locks` (as the SDK batches them) still get the
/// repository's current config neutralised: after the host remembered a quiet repository's
/// keys, the repository turned hostile runs nothing, and `-C` into a hostile repository nested
/// in it is not taken for the quiet one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_git_runs_in_a_repository_turned_hostile_run_nothing() {
    let s = Setup::new(WRITABLE);
    let dir = s.root().join("quiet");
    repo(&dir);
    let inner = dir.join("inner");
    repo(&inner);
    let marker = s.root().join("MARKER");
    make_hostile(&inner, &marker);
    std::fs::write(inner.join("a.txt"), "inner two\n").unwrap();
    // Old enough that the host keeps what it reads (see confine/git_keys.rs).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let git = |args: &[&str]| {
        let mut a = vec!["--no-optional-locks"];
        a.extend(args);
        json!({"program": "git", "args": a, "root": "work", "cwd": "quiet"})
    };

    let mcp = s.mcp().await;
    let reads = || {
        json!([
            git(&["status"]),
            git(&["diff", "HEAD"]),
            git(&["log", "-1"])
        ])
    };
    for r in batch(&mcp, reads()).await {
        assert_eq!(r["ok"]["exit_code"], 0, "{r:#}");
    }
    // Remembered now; the nested repository must not borrow the quiet one's keys.
    for r in batch(
        &mcp,
        json!([
            git(&["-C", "inner", "diff"]),
            git(&["-C", "inner", "log", "-p"])
        ]),
    )
    .await
    {
        assert_eq!(r["ok"]["exit_code"], 0, "{r:#}");
        assert!(
            !marker.exists(),
            "git -C inner ran the nested repository's code: {r:#}"
        );
    }
    assert!(
        batch(&mcp, json!([git(&["-C", "inner", "diff"])])).await[0]["ok"]["stdout"]
            .as_str()
            .unwrap()
            .contains("+inner two"),
        "the nested repository's real diff shows"
    );
    make_hostile(&dir, &marker);
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();
    let results = batch(
        &mcp,
        json!([
            git(&["status"]),
            git(&["diff", "HEAD"]),
            git(&["log", "-p", "-1"])
        ]),
    )
    .await;
    mcp.close().await;
    for r in &results {
        assert_eq!(r["ok"]["exit_code"], 0, "{r:#}");
    }
    assert!(
        !marker.exists(),
        "a batched git run ran the changed config's code: {results:#?}"
    );
    assert!(
        results[1]["ok"]["stdout"]
            .as_str()
            .unwrap()
            .contains("+two"),
        "{results:#?}"
    );
}

/// A setup with a repository `repo` in the root and bare remotes `granted.git` and
/// `other.git` outside it; `git_grant` is the `[plugin.execprobe.git]` section's body.
fn push_setup(git_grant: &str) -> (Setup, String, String) {
    let s = Setup::with(
        r#"programs = ["git"]
roots = ["work"]"#,
        "",
        "",
    );
    let granted = s.outside.path().join("granted.git");
    let other = s.outside.path().join("other.git");
    for bare in [&granted, &other] {
        git(
            s.outside.path(),
            &["init", "-q", "--bare", bare.to_str().unwrap()],
        );
    }
    let granted_url = format!("file://{}", granted.display());
    let other_url = format!("file://{}", other.display());
    let policy = std::fs::read_to_string(s.home.path().join("policy.toml")).unwrap();
    s.home.policy(&format!(
        "{policy}\n[plugin.execprobe.git]\n{}\n",
        git_grant.replace("GRANTED", &granted_url)
    ));
    let dir = s.root().join("repo");
    repo(&dir);
    git(&dir, &["remote", "add", "origin", &granted_url]);
    git(&dir, &["remote", "add", "other", &other_url]);
    (s, granted_url, other_url)
}

async fn push(mcp: &Mcp, remote: &str, extra: Value) -> (bool, Value) {
    let mut args = json!({"push": remote, "root": "work", "cwd": "repo",
                          "refspecs": ["refs/heads/main:refs/heads/main"]});
    if let (Some(a), Value::Object(e)) = (args.as_object_mut(), extra) {
        a.extend(e);
    }
    run(mcp, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_goes_to_granted_remotes_only_and_force_needs_the_grant() {
    let (s, granted_url, other_url) = push_setup(r#"remotes = ["GRANTED"]"#);
    let dir = s.root().join("repo");
    let granted_dir = granted_url.trim_start_matches("file://").to_string();
    let mcp = s.mcp().await;

    let (err, out) = push(&mcp, "origin", json!({})).await;
    assert!(!err, "{out:#}");
    assert_eq!(out["url"], granted_url.as_str());
    assert_eq!(out["output"]["exit_code"], 0, "{out:#}");
    let head = git(&dir, &["rev-parse", "HEAD"]);
    assert_eq!(
        git(Path::new(&granted_dir), &["rev-parse", "refs/heads/main"]),
        head,
        "the bare remote has the commit"
    );

    // No refspecs: the current branch, to its own name.
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();
    git(&dir, &["commit", "-qam", "second"]);
    let (err, out) = push(&mcp, "origin", json!({"refspecs": []})).await;
    assert!(!err && out["output"]["exit_code"] == 0, "{out:#}");
    assert_eq!(
        git(Path::new(&granted_dir), &["rev-parse", "refs/heads/main"]),
        git(&dir, &["rev-parse", "HEAD"])
    );

    // A remote whose URL the grant does not list.
    let (err, out) = push(&mcp, "other", json!({})).await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    assert!(message(&out).contains(&other_url), "{out:#}");

    // Force: refused without the grant, whether asked with force or a '+' refspec.
    let (err, out) = push(&mcp, "origin", json!({"force": true})).await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    let (err, out) = push(
        &mcp,
        "origin",
        json!({"refspecs": ["+refs/heads/main:refs/heads/main"]}),
    )
    .await;
    assert!(err && kind(&out) == "denied", "{out:#}");

    // Options smuggled as names are not options.
    for remote in ["--receive-pack=touch /tmp/x", "-o"] {
        let (err, out) = push(&mcp, remote, json!({})).await;
        assert!(err && kind(&out) == "invalid", "{out:#}");
    }
    let (err, out) = push(&mcp, "origin", json!({"refspecs": ["--exec=sh"]})).await;
    assert!(err && kind(&out) == "invalid", "{out:#}");

    // A URL rewritten once more by the repository's config (insteadOf chains) is refused: the
    // checked URL would not be the one used.
    let alias = "file:///nowhere/alias.git";
    git(&dir, &["remote", "add", "sneaky", alias]);
    git(
        &dir,
        &["config", &format!("url.{granted_url}.insteadOf"), alias],
    );
    git(
        &dir,
        &[
            "config",
            &format!("url.{other_url}.insteadOf"),
            &granted_url,
        ],
    );
    let (err, out) = push(&mcp, "sneaky", json!({})).await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    assert!(message(&out).contains("rewrites"), "{out:#}");
    // And plainly rewritten to an ungranted one: git's own URL is what is checked.
    git(
        &dir,
        &[
            "config",
            "--unset-all",
            &format!("url.{granted_url}.insteadOf"),
        ],
    );
    let (err, out) = push(&mcp, "origin", json!({})).await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    assert!(message(&out).contains(&other_url), "{out:#}");
    mcp.close().await;

    let other_dir = other_url.trim_start_matches("file://");
    let refs = git(Path::new(other_dir), &["for-each-ref"]);
    assert!(
        refs.is_empty(),
        "nothing reached the ungranted remote: {refs}"
    );
    let denials = s.denials("git");
    assert_eq!(denials.len(), 5, "{denials:#?}");
    assert!(
        denials
            .iter()
            .any(|d| d["target"] == format!("push {other_url}")),
        "{denials:#?}"
    );
    let pushes: Vec<Value> = s
        .events()
        .into_iter()
        .filter(|e| e["cap"] == "git" && e["decision"] == "allow")
        .collect();
    assert_eq!(pushes.len(), 2, "{pushes:#?}");
    assert_eq!(pushes[0]["target"], format!("push {granted_url}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_force_push_uses_a_lease() {
    let (s, granted_url, _) = push_setup("remotes = [\"GRANTED\"]\nforce = true");
    let dir = s.root().join("repo");
    let mcp = s.mcp().await;
    let (err, out) = push(&mcp, "origin", json!({})).await;
    assert!(!err && out["output"]["exit_code"] == 0, "{out:#}");
    git(&dir, &["fetch", "-q", "origin"]);
    git(&dir, &["commit", "-q", "--amend", "-m", "rewritten"]);
    let (err, out) = push(&mcp, "origin", json!({"force": true})).await;
    assert!(!err && out["output"]["exit_code"] == 0, "{out:#}");
    let granted_dir = granted_url.trim_start_matches("file://");
    assert_eq!(
        git(Path::new(granted_dir), &["rev-parse", "refs/heads/main"]),
        git(&dir, &["rev-parse", "HEAD"])
    );

    // Someone else pushes after our last fetch: the lease protects their work.
    let theirs = s.outside.path().join("theirs");
    git(
        s.outside.path(),
        &[
            "clone",
            "-q",
            "-b",
            "main",
            &granted_url,
            theirs.to_str().unwrap(),
        ],
    );
    std::fs::write(theirs.join("b.txt"), "theirs\n").unwrap();
    git(&theirs, &["add", "b.txt"]);
    git(&theirs, &["commit", "-qm", "theirs"]);
    git(&theirs, &["push", "-q", "origin", "main"]);
    let their_head = git(&theirs, &["rev-parse", "HEAD"]);
    git(&dir, &["commit", "-q", "--amend", "-m", "rewritten again"]);
    let (err, out) = push(&mcp, "origin", json!({"force": true})).await;
    assert!(!err && out["output"]["exit_code"] != 0, "{out:#}");
    assert!(
        out["output"]["stdout"]
            .as_str()
            .unwrap()
            .contains("stale info"),
        "{out:#}"
    );
    assert_eq!(
        git(Path::new(granted_dir), &["rev-parse", "refs/heads/main"]),
        their_head,
        "their commit survived"
    );
    mcp.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_over_real_ssh_with_a_host_held_key() {
    let sshd = infra_tests::sshd::Sshd::start();
    let (s, _, _) = push_setup("");
    let bare = s.outside.path().join("over-ssh.git");
    git(
        s.outside.path(),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    );
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        bare.display()
    );
    let secrets = tempfile::tempdir().unwrap();
    let pass = secrets.path().join("pass");
    std::fs::write(&pass, &sshd.passphrase).unwrap();
    let known = secrets.path().join("known_hosts");
    let host_pub = std::fs::read_to_string(sshd.dir().join("host_ed25519.pub")).unwrap();
    std::fs::write(&known, format!("[127.0.0.1]:{} {host_pub}", sshd.port)).unwrap();
    s.home.profiles(&json!({"deploy": {
        "type": "ssh-key",
        "key": format!("file:{}", sshd.key_encrypted.display()),
        "passphrase": format!("file:{}", pass.display()),
        "known_hosts": format!("file:{}", known.display()),
    }}));
    let policy = std::fs::read_to_string(s.home.path().join("policy.toml")).unwrap();
    s.home.policy(&format!(
        "{policy}remotes = [\"{url}\"]\nprofiles = [\"deploy\"]\n"
    ));
    let dir = s.root().join("repo");
    git(&dir, &["remote", "add", "deploy", &url]);
    let mcp = s.mcp().await;

    // Without the profile there is no key: ssh fails, nothing is pushed.
    let (err, out) = push(&mcp, "deploy", json!({})).await;
    assert!(!err && out["output"]["exit_code"] != 0, "{out:#}");
    // With it, the push lands.
    let (err, out) = push(&mcp, "deploy", json!({"profile": "deploy"})).await;
    assert!(
        !err && out["output"]["exit_code"] == 0,
        "{out:#}\nsshd log:\n{}",
        sshd.log()
    );
    assert_eq!(out["url"], url.as_str());
    assert_eq!(
        git(&bare, &["rev-parse", "refs/heads/main"]),
        git(&dir, &["rev-parse", "HEAD"])
    );
    // A profile the grant does not list.
    let (err, out) = push(&mcp, "deploy", json!({"profile": "other"})).await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    mcp.close().await;
    let key_text = std::fs::read_to_string(&sshd.key_encrypted).unwrap();
    let all = s.home.all_bytes();
    assert!(
        !contains(&all, &sshd.passphrase),
        "the passphrase is nowhere in the state"
    );
    let body_line = key_text.lines().nth(1).unwrap();
    assert!(
        !contains(&all, body_line),
        "the key is nowhere in the state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsafe_grant_needs_the_flag_and_then_reaches_any_path() {
    let s = Setup::new("unsafe = true\nread_only = false");
    let outside = s.outside.path().join("f");
    std::fs::write(&outside, "outside\n").unwrap();
    let args = json!({"program": "cat", "args": [outside], "root": "/", "cwd": "/"});
    let mcp = s.mcp().await;
    let (err, out) = run(&mcp, args.clone()).await;
    assert!(err && kind(&out) == "denied", "{out:#}");
    assert!(message(&out).contains("INFRA_UNSAFE_LOCAL"), "{out:#}");
    mcp.close().await;

    let mcp = s
        .home
        .mcp_with(|c| {
            c.env("INFRA_UNSAFE_LOCAL", "1");
        })
        .await;
    let (err, out) = run(&mcp, args).await;
    assert!(!err && out["stdout"] == "outside\n", "{out:#}");
    // A name on the host's PATH, not in [programs]; the environment is still the host's.
    let (err, out) = run(&mcp, json!({"program": "env", "root": "/", "cwd": "/tmp"})).await;
    assert!(!err, "{out:#}");
    let env = out["stdout"].as_str().unwrap();
    assert!(
        env.contains("PATH=/usr/local/bin:/usr/bin:/bin\n") && !env.contains("INFRA_UNSAFE_LOCAL"),
        "{env}"
    );
    mcp.close().await;
    let allowed = s
        .events()
        .into_iter()
        .filter(|e| e["cap"] == "exec" && e["decision"] == "allow")
        .count();
    assert_eq!(allowed, 2, "every unsafe run is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_kustomize_runs_confined_and_its_plugin_options_are_refused() {
    if !Path::new("/usr/bin/kubectl").is_file() {
        panic!("/usr/bin/kubectl is missing: install kubectl (scripts/test.sh does)");
    }
    let s = Setup::with(
        "programs = [\"kubectl\"]\nroots = [\"work\"]",
        "kubectl = \"/usr/bin/kubectl\"",
        "",
    );
    let k = s.root().join("k");
    std::fs::create_dir(&k).unwrap();
    std::fs::write(
        k.join("kustomization.yaml"),
        "resources: [cm.yaml]\nnamePrefix: demo-\n",
    )
    .unwrap();
    std::fs::write(
        k.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n",
    )
    .unwrap();
    let mcp = s.mcp().await;
    let (err, out) = run(
        &mcp,
        json!({"program": "kubectl", "args": ["kustomize", "k"], "root": "work"}),
    )
    .await;
    assert!(!err && out["exit_code"] == 0, "{out:#}");
    assert!(
        out["stdout"]
            .as_str()
            .unwrap()
            .contains("name: demo-settings"),
        "{out:#}"
    );
    for args in [
        json!(["kustomize", "k", "--enable-helm"]),
        json!(["kustomize", "--enable-alpha-plugins", "k"]),
        json!(["--kubeconfig=/root/.kube/config", "get", "pods"]),
    ] {
        let (err, out) = run(
            &mcp,
            json!({"program": "kubectl", "args": args, "root": "work"}),
        )
        .await;
        assert!(err && kind(&out) == "denied", "{args}: {out:#}");
    }
    mcp.close().await;
}
