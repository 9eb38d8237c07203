//! The ssh plugin through the real binary over MCP, against a real OpenSSH sshd on loopback.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use infra_tests::sshd::{Sshd, fingerprint, loopback_aliases, processes_matching, unique};
use infra_tests::{Home, Mcp, text, wait_for, with_fields};
use serde_json::{Value, json};

/// An sshd, a state directory whose targets.json has `plain` (key without passphrase) and `enc`
/// (the encrypted key, passphrase by `file:` reference from outside the state directory).
struct Setup {
    sshd: Sshd,
    home: Home,
    _secrets: tempfile::TempDir,
}

fn setup() -> Setup {
    let sshd = Sshd::start();
    let home = Home::new();
    let secrets = tempfile::tempdir().unwrap();
    let pass = secrets.path().join("passphrase");
    std::fs::write(&pass, &sshd.passphrase).unwrap();
    write_targets(
        &home,
        json!({
            "plain": sshd.target(false, None),
            "enc": sshd.target(true, Some(&format!("file:{}", pass.display()))),
        }),
    );
    Setup {
        sshd,
        home,
        _secrets: secrets,
    }
}

fn write_targets(home: &Home, targets: Value) {
    std::fs::write(home.path().join("targets.json"), targets.to_string()).unwrap();
}

async fn exec(mcp: &Mcp, target: &str, extra: Value) -> (bool, Value) {
    mcp.call(
        "ssh",
        with_fields(json!({"action": "exec", "target": target}), extra),
    )
    .await
}

#[tokio::test]
async fn exec_runs_commands_with_stdin_env_cwd_pty_and_reports_exit_and_signal() {
    let s = setup();
    let mcp = s.home.mcp().await;
    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "echo hello; echo oops >&2"}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["ok"], true);
    assert_eq!(out["command"]["exit_code"], 0, "{out}");
    assert_eq!(text(&out, "/command/stdout"), "hello\n");
    assert_eq!(
        text(&out, "/command/stderr"),
        "oops\n",
        "the pid line is not shown"
    );

    let (_, out) = exec(
        &mcp,
        "enc",
        json!({"command": "cat; printf %s \"$GREETING\"; pwd", "stdin": "from stdin\n",
        "env": {"GREETING": "hi 'there'"}, "cwd": "/tmp"}),
    )
    .await;
    assert_eq!(
        text(&out, "/command/stdout"),
        "from stdin\nhi 'there'/tmp\n",
        "{out}"
    );

    let b64 = base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2, 255]);
    let (_, out) = exec(
        &mcp,
        "plain",
        json!({"command": "od -An -tu1", "stdin_base64": b64}),
    )
    .await;
    assert_eq!(
        text(&out, "/command/stdout")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "1", "2", "255"]
    );

    let (err, out) = exec(&mcp, "plain", json!({"command": "exit 3"})).await;
    assert!(!err, "a non-zero exit is a result, not a failure: {out}");
    assert_eq!(out["command"]["exit_code"], 3);

    let (_, out) = exec(&mcp, "plain", json!({"command": "kill -KILL $$"})).await;
    assert_eq!(out["command"]["signal"], "KILL", "{out}");
    assert_eq!(out["command"]["exit_code"], Value::Null);

    let (_, out) = exec(&mcp, "plain", json!({"command": "tty", "pty": true})).await;
    assert!(text(&out, "/command/stdout").contains("/dev/pts/"), "{out}");

    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "true", "cwd": "/nonexistent/dir"}),
    )
    .await;
    assert!(!err);
    assert_eq!(out["command"]["exit_code"], 126, "{out}");

    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "true", "env": {"BAD NAME": "x"}}),
    )
    .await;
    assert!(err, "{out}");
    assert!(text(&out, "/error/message").contains("BAD NAME"), "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn long_output_is_capped_inline_and_spilled_whole_to_an_artifact() {
    let s = setup();
    let mcp = s.home.mcp().await;
    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "head -c 200000 /dev/zero | tr '\\0' a; echo done >&2", "max_output": 1000}),
    )
    .await;
    assert!(!err, "{out}");
    let c = &out["command"];
    assert_eq!(c["stdout_truncated"], true);
    assert_eq!(c["stdout"].as_str().unwrap().len(), 1000);
    assert_eq!(c["stderr_truncated"], false);
    assert_eq!(c["stdout_artifact"]["size"], 200_000, "{out}");
    let uri = c["stdout_artifact"]["uri"].as_str().unwrap().to_string();
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(vec![b'a'; 200_000]))
    };
    assert_eq!(c["stdout_artifact"]["sha256"], want.as_str());
    let (err, out) = mcp
        .call(
            "artifacts",
            json!({"action": "head", "uri": uri, "length": 10}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(out.to_string().contains("aaaaaaaaaa"), "{out}");
    // stderr is capped and spilled the same way, independently of stdout.
    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "head -c 50000 /dev/zero | tr '\\0' e >&2; echo short", "max_output": 1000}),
    )
    .await;
    assert!(!err, "{out}");
    let c = &out["command"];
    assert_eq!(c["stdout"], "short\n", "{out}");
    assert_eq!(c["stdout_truncated"], false, "{out}");
    assert_eq!(c["stderr_truncated"], true, "{out}");
    assert_eq!(c["stderr"].as_str().unwrap().len(), 1000, "{out}");
    assert_eq!(c["stderr_artifact"]["size"], 50_000, "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn fifty_execs_share_one_ssh_connection() {
    let s = setup();
    let mcp = s.home.mcp().await;
    for i in 0..50 {
        let (err, out) = exec(&mcp, "plain", json!({"command": format!("echo {i}")})).await;
        assert!(!err, "{out}");
        assert_eq!(text(&out, "/command/stdout"), format!("{i}\n"));
    }
    assert_eq!(
        s.sshd.accepted(),
        1,
        "sshd accepted more than one connection:\n{}",
        s.sshd.log()
    );
    mcp.close().await;
}

#[tokio::test]
async fn batch_stops_at_the_first_failure_unless_told_to_go_on() {
    let s = setup();
    let mcp = s.home.mcp().await;
    let (err, out) = mcp
        .call("ssh", json!({"action": "batch", "target": "plain", "commands": ["echo a", "false", "echo c"]}))
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["results"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(out["failed"], 1);
    assert_eq!(out["skipped"], 1);
    let (_, out) = mcp
        .call("ssh", json!({"action": "batch", "target": "plain", "commands": ["echo a", "false", "echo c"], "continue_on_error": true}))
        .await;
    assert_eq!(out["results"].as_array().unwrap().len(), 3, "{out}");
    assert_eq!(text(&out, "/results/2/stdout"), "c\n");
    // A command that times out mid-batch keeps the results before it and stops the batch.
    let (err, out) = mcp
        .call("ssh", json!({"action": "batch", "target": "plain", "commands": ["echo a", "sleep 30", "echo c"], "timeout_ms": 4000}))
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["results"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(text(&out, "/results/0/stdout"), "a\n");
    assert!(
        text(&out, "/results/1/error").starts_with("timeout:"),
        "{out}"
    );
    assert_eq!(out["failed"], 1);
    assert_eq!(out["skipped"], 1);
    mcp.close().await;
}

#[tokio::test]
async fn system_info_and_check_host() {
    let s = setup();
    let mcp = s.home.mcp().await;
    let (err, out) = mcp
        .call("ssh", json!({"action": "system_info", "target": "plain"}))
        .await;
    assert!(!err, "{out}");
    assert!(out["info"]["cpus"].as_u64().unwrap() >= 1, "{out}");
    assert!(out["info"]["mem_total_kb"].as_u64().unwrap() > 0, "{out}");
    assert!(!text(&out, "/info/kernel").is_empty());
    assert_eq!(out["info"]["user"], s.sshd.user.as_str());
    let (err, out) = mcp
        .call("ssh", json!({"action": "check_host", "target": "enc"}))
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["reachable"], true, "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn a_wrong_or_changed_host_key_is_refused_with_both_fingerprints() {
    let s = setup();
    // A pin that is not the server's key.
    let other = s.sshd.dir().join("other_host");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let wrong = fingerprint(&other.with_extension("pub"));
    let mut pinned = s.sshd.target(false, None);
    pinned["host_key"] = json!(wrong);
    let mut tofu = s.sshd.target(false, None);
    tofu["host_key"] = json!("tofu");
    write_targets(&s.home, json!({"pinned": pinned, "tofu": tofu}));
    let mcp = s.home.mcp().await;
    let (err, out) = exec(&mcp, "pinned", json!({"command": "echo should-not-run"})).await;
    assert!(err, "{out}");
    let msg = text(&out, "/error/message");
    assert!(
        msg.contains(&wrong) && msg.contains(&s.sshd.host_fingerprint),
        "{msg}"
    );
    assert_eq!(s.sshd.accepted(), 0, "no login happened");

    // TOFU: the first key is recorded, then a different record is refused.
    let (err, out) = exec(&mcp, "tofu", json!({"command": "echo ok"})).await;
    assert!(!err, "{out}");
    let known = s.home.path().join("known_hosts.json");
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&known).unwrap()).unwrap();
    let endpoint = format!("127.0.0.1:{}", s.sshd.port);
    assert_eq!(
        recorded[endpoint.as_str()],
        s.sshd.host_fingerprint.as_str()
    );
    mcp.close().await;
    let mut changed = serde_json::Map::new();
    changed.insert(endpoint.clone(), json!(wrong));
    std::fs::write(&known, Value::Object(changed).to_string()).unwrap();
    let mcp = s.home.mcp().await;
    let (err, out) = exec(&mcp, "tofu", json!({"command": "echo should-not-run"})).await;
    assert!(err, "{out}");
    let msg = text(&out, "/error/message");
    assert!(
        msg.contains(&wrong) && msg.contains(&s.sshd.host_fingerprint),
        "{msg}"
    );
    assert!(msg.contains("known_hosts.json"), "{msg}");
    mcp.close().await;

    // A damaged record is not an empty one: refused, and the file is left as it was.
    let damaged = format!("{{\"{endpoint}\": \"{wrong}\", ");
    std::fs::write(&known, &damaged).unwrap();
    let mcp = s.home.mcp().await;
    let (err, out) = exec(&mcp, "tofu", json!({"command": "echo should-not-run"})).await;
    assert!(err, "{out}");
    let msg = text(&out, "/error/message");
    assert!(
        msg.contains("known_hosts.json") && msg.contains("not valid JSON"),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&known).unwrap(), damaged);
    assert_eq!(s.sshd.accepted(), 1, "only the first tofu call logged in");
    mcp.close().await;
}

#[tokio::test]
async fn a_target_without_host_key_is_refused_at_start() {
    let s = setup();
    let mut t = s.sshd.target(false, None);
    t.as_object_mut().unwrap().remove("host_key");
    write_targets(&s.home, json!({"nopin": t}));
    let out = s
        .home
        .command()
        .args([
            "call",
            "ssh",
            r#"{"action": "exec", "target": "nopin", "command": "true"}"#,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'nopin'") && stderr.contains("host_key") && stderr.contains("tofu"),
        "{stderr}"
    );
}

#[tokio::test]
async fn authentication_failure_and_unknown_target_are_clear_errors() {
    let s = setup();
    let stranger = s.sshd.dir().join("stranger");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    let mut t = s.sshd.target(false, None);
    t["key_file"] = json!(stranger);
    write_targets(
        &s.home,
        json!({"stranger": t, "plain": s.sshd.target(false, None)}),
    );
    let mcp = s.home.mcp().await;
    let (err, out) = exec(&mcp, "stranger", json!({"command": "true"})).await;
    assert!(err, "{out}");
    let msg = text(&out, "/error/message");
    assert!(
        msg.contains("refused to authenticate") && msg.contains(&s.sshd.user),
        "{msg}"
    );
    let (err, out) = exec(&mcp, "nowhere", json!({"command": "true"})).await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "not-found", "{out}");
    assert!(text(&out, "/error/message").contains("plain"), "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn a_policy_without_the_target_denies_it() {
    let s = setup();
    s.home.policy(
        "[plugin.ssh.ssh]\ntargets = [\"prod-*\"]\n[plugin.ssh.artifacts]\n[plugin.ssh.log]\n",
    );
    let mcp = s.home.mcp().await;
    let (err, out) = exec(&mcp, "plain", json!({"command": "true"})).await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(
        text(&out, "/error/message").contains("[plugin.ssh.ssh]"),
        "{out}"
    );
    assert_eq!(s.sshd.accepted(), 0);
    mcp.close().await;
}

/// `[plugin.ssh.artifacts]` is enforced like every other grant: without it nothing is stored
/// or read as an artifact, and output past the cap is still capped and marked truncated.
#[tokio::test]
async fn without_the_artifacts_grant_nothing_is_stored_or_read() {
    let s = setup();
    s.home
        .policy("[plugin.ssh.ssh]\ntargets = [\"*\"]\n[plugin.ssh.log]\n");
    let mcp = s.home.mcp().await;
    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "head -c 5000 /dev/zero | tr '\\0' x", "max_output": 100}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(text(&out, "/command/stdout").len(), 100, "{out}");
    assert_eq!(out["command"]["stdout_truncated"], true, "{out}");
    assert!(out["command"].get("stdout_artifact").is_none(), "{out}");
    let file = s.sshd.dir().join("authorized_keys");
    let (err, out) = mcp
        .call(
            "ssh",
            json!({"action": "sftp_download", "target": "plain", "path": file}),
        )
        .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(
        text(&out, "/error/message").contains("[plugin.ssh.artifacts]"),
        "{out}"
    );
    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "cat", "stdin_artifact": "artifact://0123456789abcdef0123456789abcdef"}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    mcp.close().await;
    // Each refusal is in the audit log as a denied capability use.
    let audit = std::fs::read_to_string(s.home.path().join("audit.jsonl")).unwrap();
    let denials = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["cap"] == "artifacts" && e["decision"] == "deny")
        .count();
    assert_eq!(denials, 3, "{audit}");
}

#[tokio::test]
async fn a_timed_out_command_is_killed_on_the_target() {
    let s = setup();
    let mcp = s.home.mcp().await;
    let marker = format!("sleep {}", 900_000 + std::process::id() % 10_000);
    // The command sleeps for days: that the call returns at all, as a `timeout`, is the deadline
    // holding (the harness bounds a hang).
    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": format!("{marker}; echo never"), "timeout_ms": 4000}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "timeout", "{out}");
    wait_for(&format!("'{marker}' to be killed on the target"), || {
        processes_matching(&marker).is_empty()
    })
    .await;
    // The connection is still good.
    let (err, out) = exec(&mcp, "plain", json!({"command": "echo after"})).await;
    assert!(!err, "{out}");
    assert_eq!(s.sshd.accepted(), 1, "{}", s.sshd.log());
    mcp.close().await;
}

#[tokio::test]
async fn sshd_killed_mid_command_is_a_clean_error_and_the_next_call_reconnects() {
    let mut s = setup();
    let mcp = s.home.mcp().await;
    let (err, out) = exec(&mcp, "plain", json!({"command": "echo warm"})).await;
    assert!(!err, "{out}");
    // A command line of its own, so the test can see it running on the target before the kill.
    let marker = unique("mid-exec");
    let call = exec(
        &mcp,
        "plain",
        json!({"command": format!("sleep 20; echo {marker}"), "timeout_ms": 30000}),
    );
    let restart = async {
        // Polled, not slept: sshd is killed only once the command really runs (a generous
        // bound, for busy machines).
        let started = std::time::Instant::now();
        while processes_matching(&marker).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the command never started on the target"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s.sshd.restart();
    };
    let ((err, out), ()) = tokio::join!(call, restart);
    assert!(err, "{out}");
    let msg = text(&out, "/error/message");
    assert!(msg.contains("lost") && msg.contains("reconnects"), "{msg}");
    assert!(
        processes_matching(&marker).is_empty(),
        "the cut command survived the kill"
    );
    let (err, out) = exec(&mcp, "plain", json!({"command": "echo again"})).await;
    assert!(!err, "{out}");
    assert_eq!(text(&out, "/command/stdout"), "again\n");
    assert_eq!(s.sshd.accepted(), 2, "{}", s.sshd.log());
    // While the server is down, calls fail saying so; once it is back, the next one reconnects.
    s.sshd.kill_all();
    let (err, out) = exec(&mcp, "plain", json!({"command": "echo down"})).await;
    assert!(err, "{out}");
    assert!(
        text(&out, "/error/message").contains("cannot connect to target 'plain'"),
        "{out}"
    );
    s.sshd.restart();
    let (err, out) = exec(&mcp, "plain", json!({"command": "echo back"})).await;
    assert!(!err, "{out}");
    assert_eq!(text(&out, "/command/stdout"), "back\n");
    assert_eq!(s.sshd.accepted(), 3, "{}", s.sshd.log());
    mcp.close().await;
}

#[tokio::test]
async fn sftp_upload_list_stat_download_and_deploy_file() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().display().to_string();
    let mcp = s.home.mcp().await;
    let file = format!("{base}/deep/er/hello.txt");
    let call = |args: Value| mcp.call("ssh", args);

    // Parents missing and mkdirs not set: an error.
    let (err, out) = call(
        json!({"action": "sftp_upload", "target": "plain", "path": file, "content": "hello\n"}),
    )
    .await;
    assert!(err, "{out}");
    let (err, out) = call(
        json!({"action": "sftp_upload", "target": "plain", "path": file, "content": "hello\n",
        "mkdirs": true, "mode": "640"}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["file"]["size"], 6);
    assert_eq!(out["file"]["mode"], "640", "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello\n");

    // No overwrite by default.
    let (err, out) =
        call(json!({"action": "sftp_upload", "target": "plain", "path": file, "content": "other"}))
            .await;
    assert!(err, "{out}");
    assert!(text(&out, "/error/message").contains("overwrite"), "{out}");
    let b64 = base64::engine::general_purpose::STANDARD.encode([0u8, 255, 10]);
    let (err, out) = call(json!({"action": "sftp_upload", "target": "plain", "path": file, "content_base64": b64, "overwrite": true})).await;
    assert!(!err, "{out}");
    assert_eq!(std::fs::read(&file).unwrap(), [0u8, 255, 10]);

    let (err, out) =
        call(json!({"action": "sftp_list", "target": "plain", "path": format!("{base}/deep/er")}))
            .await;
    assert!(!err, "{out}");
    assert_eq!(out["entries"][0]["path"], "hello.txt", "{out}");
    assert_eq!(out["entries"][0]["kind"], "file");
    let (_, out) =
        call(json!({"action": "sftp_stat", "target": "plain", "path": format!("{base}/deep")}))
            .await;
    assert_eq!(out["file"]["kind"], "directory", "{out}");
    let (err, out) =
        call(json!({"action": "sftp_stat", "target": "plain", "path": format!("{base}/missing")}))
            .await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "not-found", "{out}");

    // Download into an artifact, then upload from it.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(format!("{base}/big.bin"), &big).unwrap();
    let (err, out) = call(
        json!({"action": "sftp_download", "target": "plain", "path": format!("{base}/big.bin")}),
    )
    .await;
    assert!(!err, "{out}");
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&big))
    };
    assert_eq!(out["artifact"]["size"], 300_000);
    assert_eq!(out["artifact"]["sha256"], want.as_str());
    let uri = text(&out, "/artifact/uri").to_string();
    let (err, out) = call(json!({"action": "sftp_download", "target": "plain", "path": format!("{base}/big.bin"), "max_bytes": 1000})).await;
    assert!(err, "{out}");
    let (err, out) = call(json!({"action": "sftp_upload", "target": "plain", "path": format!("{base}/copy.bin"), "content_artifact": uri})).await;
    assert!(!err, "{out}");
    assert_eq!(std::fs::read(format!("{base}/copy.bin")).unwrap(), big);

    // Exec stdin from the artifact.
    let (_, out) = call(
        json!({"action": "exec", "target": "plain", "command": "wc -c", "stdin_artifact": uri}),
    )
    .await;
    assert_eq!(text(&out, "/command/stdout").trim(), "300000", "{out}");

    // deploy_file: changed, then unchanged, with a restart command that runs only on change.
    let conf = format!("{base}/app/app.conf");
    let marker = format!("{base}/restarted");
    let deploy = json!({"action": "deploy_file", "target": "enc", "path": conf, "content": "port = 80\n",
        "mkdirs": true, "restart_command": format!("echo x >> {marker}")});
    let (err, out) = call(deploy.clone()).await;
    assert!(!err, "{out}");
    assert_eq!(out["changed"], true);
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"port = 80\n"))
    };
    assert_eq!(out["sha256"], want.as_str());
    assert_eq!(out["restart"]["exit_code"], 0, "{out}");
    let (err, out) = call(deploy).await;
    assert!(!err, "{out}");
    assert_eq!(out["changed"], false, "{out}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "x\n",
        "restarted once"
    );
    // A failing restart: the file is in place (verified), the call fails and says which part.
    // The new content replaces the old by a rename, keeping the old file's mode.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let (err, out) = call(
        json!({"action": "deploy_file", "target": "enc", "path": conf,
        "content": "port = 81\n", "restart_command": "echo cannot-restart >&2; exit 3"}),
    )
    .await;
    assert!(err, "{out}");
    let msg = text(&out, "/error/message");
    assert!(
        msg.contains("restart command failed") && msg.contains("cannot-restart"),
        "{out}"
    );
    assert_eq!(out["error"]["detail"]["changed"], true, "{out}");
    assert_eq!(out["error"]["detail"]["restart"]["exit_code"], 3, "{out}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "port = 81\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640, "the deployed file keeps the old file's mode");
    }
    let leftovers: Vec<String> = std::fs::read_dir(format!("{base}/app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "app.conf")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary upload files left: {leftovers:?}"
    );
    // A missing directory without mkdirs, and listing a path that is not there.
    let (err, out) = call(json!({"action": "sftp_upload", "target": "enc",
        "path": format!("{base}/no/such/dir/f"), "content": "x"}))
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "not-found", "{out}");
    assert!(
        text(&out, "/error/message").contains("mkdirs: true"),
        "{out}"
    );
    let (err, out) = call(
        json!({"action": "sftp_list", "target": "enc", "path": format!("{base}/nothing-here")}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "not-found", "{out}");
    assert!(
        text(&out, "/error/message").contains("does not exist"),
        "{out}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn an_idle_connection_dropped_by_the_server_is_replaced_transparently() {
    let mut s = setup();
    // A target whose private key comes by reference (`key`) rather than a key file.
    let mut by_ref = s.sshd.target(false, None);
    by_ref.as_object_mut().unwrap().remove("key_file");
    by_ref["key"] = json!(format!("file:{}", s.sshd.key.display()));
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut closed = s.sshd.target(false, None);
    closed["port"] = json!(free.local_addr().unwrap().port());
    drop(free);
    write_targets(
        &s.home,
        json!({"plain": s.sshd.target(false, None), "byref": by_ref, "closed": closed}),
    );
    let mcp = s.home.mcp().await;
    let (err, out) = exec(&mcp, "plain", json!({"command": "echo one"})).await;
    assert!(!err, "{out}");
    s.sshd.restart();
    let (err, out) = exec(&mcp, "plain", json!({"command": "echo two"})).await;
    assert!(
        !err,
        "the call after the server dropped the idle connection: {out}"
    );
    assert_eq!(text(&out, "/command/stdout"), "two\n");
    assert_eq!(s.sshd.accepted(), 2, "{}", s.sshd.log());
    let (err, out) = exec(&mcp, "byref", json!({"command": "echo three"})).await;
    assert!(!err, "{out}");
    assert_eq!(text(&out, "/command/stdout"), "three\n");
    let (err, out) = mcp
        .call("ssh", json!({"action": "check_host", "target": "closed"}))
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["reachable"], false, "{out}");
    assert!(text(&out, "/problem").contains("cannot connect"), "{out}");
    mcp.close().await;
}

/// Starts `command` with `exec_detached`, its job directory inside the sshd's temporary one.
async fn detach(s: &Setup, mcp: &Mcp, command: &str, extra: Value) -> Value {
    let args = json!({"action": "exec_detached", "target": "plain", "command": command,
        "env": {"HOME": s.sshd.dir()}});
    let (err, out) = mcp.call("ssh", with_fields(args, extra)).await;
    assert!(!err, "{out}");
    out
}

async fn jobs(mcp: &Mcp, args: Value) -> (bool, Value) {
    mcp.call("jobs", args).await
}

#[tokio::test]
async fn exec_detached_runs_in_the_background_and_jobs_follows_it_across_restarts() {
    let mut s = setup();
    let mcp = s.home.mcp().await;
    // The command cannot end before the test opens its gate: exec_detached answering at all
    // is its returning before the command ended (the harness bounds a hang).
    let gate = s.sshd.dir().join(unique("gate"));
    let out = detach(
        &s,
        &mcp,
        &format!(
            "printf '%s ' \"$GREETING\"; pwd; echo started; \
             while [ ! -e {} ]; do sleep 0.05; done; echo done; echo warn >&2; exit 3",
            gate.display()
        ),
        json!({"env": {"HOME": s.sshd.dir(), "GREETING": "hi"}, "cwd": "/tmp"}),
    )
    .await;
    let id = text(&out, "/job/id").to_string();
    let dir = text(&out, "/job/dir").to_string();
    assert!(
        dir.starts_with(&s.sshd.dir().display().to_string()),
        "{out}"
    );
    assert!(text(&out, "/job/next").contains(&id));

    let (err, st) = jobs(&mcp, json!({"action": "status", "id": id})).await;
    assert!(!err, "{st}");
    assert_eq!(st["state"], "running", "{st}");
    let (_, list) = jobs(&mcp, json!({"action": "list"})).await;
    assert_eq!(list["items"][0]["id"], id.as_str(), "{list}");
    assert_eq!(list["items"][0]["state"], "running", "{list}");

    std::fs::write(&gate, b"").expect("open the gate");
    let (err, w) = jobs(
        &mcp,
        json!({"action": "wait", "id": id, "timeout_ms": 20000}),
    )
    .await;
    assert!(!err, "{w}");
    assert_eq!(w["done"], true, "{w}");
    assert_eq!(w["state"], "exited", "{w}");
    assert_eq!(w["exit_code"], 3, "{w}");

    let (err, l) = jobs(&mcp, json!({"action": "logs", "id": id})).await;
    assert!(!err, "{l}");
    assert_eq!(text(&l, "/stdout"), "hi /tmp\nstarted\ndone\n");
    assert_eq!(text(&l, "/stderr"), "warn\n");
    assert_eq!(l["stdout_truncated"], false);
    let (_, l) = jobs(
        &mcp,
        json!({"action": "logs", "id": id, "stream": "stdout", "tail_bytes": 5, "full": true}),
    )
    .await;
    assert_eq!(text(&l, "/stdout"), "done\n", "{l}");
    assert_eq!(l["stdout_truncated"], true, "{l}");
    assert!(l.get("stderr").is_none(), "{l}");
    let uri = text(&l, "/stdout_artifact").to_string();
    let (_, a) = mcp
        .call("artifacts", json!({"action": "get", "uri": uri}))
        .await;
    assert_eq!(text(&a, "/text"), "hi /tmp\nstarted\ndone\n", "{a}");

    // The job outlives the SSH connection: sshd and its sessions are killed meanwhile.
    let out = detach(&s, &mcp, "sleep 2; echo survived", json!({})).await;
    let id2 = text(&out, "/job/id").to_string();
    s.sshd.restart();
    mcp.close().await;
    // And a restarted server still knows both jobs.
    let mcp = s.home.mcp().await;
    let (err, w) = jobs(
        &mcp,
        json!({"action": "wait", "id": id2, "timeout_ms": 20000}),
    )
    .await;
    assert!(!err, "{w}");
    assert_eq!(
        (w["state"].as_str(), w["exit_code"].as_i64()),
        (Some("exited"), Some(0)),
        "{w}"
    );
    let (_, l) = jobs(&mcp, json!({"action": "logs", "id": id2})).await;
    assert_eq!(text(&l, "/stdout"), "survived\n", "{l}");
    let (_, st) = jobs(&mcp, json!({"action": "status", "id": id})).await;
    assert_eq!(st["exit_code"], 3, "{st}");
    // The audit log has the calls, with the capability events of `jobs` in them.
    let audit = std::fs::read_to_string(s.home.path().join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"tool\":\"jobs\"") && l.contains("\"cap\":\"ssh\"")),
        "{audit}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn cancel_stops_the_whole_remote_process_group() {
    let s = setup();
    let mcp = s.home.mcp().await;
    let n = 900_000 + std::process::id() % 10_000;
    let (stubborn, plain) = (format!("sleep {}", n + 1), format!("sleep {}", n + 2));
    // One child ignores SIGTERM, so the cancel has to escalate to SIGKILL.
    let out = detach(
        &s,
        &mcp,
        &format!("(trap '' TERM; {stubborn}) & {plain}; wait"),
        json!({}),
    )
    .await;
    let id = text(&out, "/job/id").to_string();
    wait_for("the job's two processes to start", || {
        !processes_matching(&stubborn).is_empty() && !processes_matching(&plain).is_empty()
    })
    .await;
    assert!(
        !processes_matching(&stubborn).is_empty(),
        "the job never started"
    );

    let (err, c) = jobs(&mcp, json!({"action": "cancel", "id": id, "grace_ms": 500})).await;
    assert!(!err, "{c}");
    assert_eq!(c["state"], "cancelled", "{c}");
    assert_eq!(c["signal"], "SIGTERM, then SIGKILL", "{c}");
    for marker in [&stubborn, &plain] {
        assert!(
            processes_matching(marker).is_empty(),
            "'{marker}' still runs after cancel: {:?}",
            processes_matching(marker)
        );
    }
    let (_, st) = jobs(&mcp, json!({"action": "status", "id": id})).await;
    assert_eq!(st["state"], "cancelled", "{st}");
    let (err, again) = jobs(&mcp, json!({"action": "cancel", "id": id})).await;
    assert!(!err, "{again}");
    assert_eq!(again["already_finished"], true, "{again}");
    let (_, w) = jobs(&mcp, json!({"action": "wait", "id": id})).await;
    assert_eq!(w["done"], true, "{w}");
    mcp.close().await;
}

#[tokio::test]
async fn jobs_failure_paths_are_clear() {
    let mut s = setup();
    let mcp = s.home.mcp().await;
    let (err, out) = mcp
        .call("ssh", json!({"action": "exec_detached", "target": "plain"}))
        .await;
    assert!(err);
    assert_eq!(out["error"]["field"], "command", "{out}");
    let (err, out) = mcp
        .call(
            "ssh",
            json!({"action": "exec_detached", "target": "plain", "command": "true",
                "cwd": "/no/such/dir"}),
        )
        .await;
    assert!(err);
    assert!(
        text(&out, "/error/message").contains("/no/such/dir"),
        "{out}"
    );
    let (err, out) = jobs(
        &mcp,
        json!({"action": "status", "id": "j-0000000000000000"}),
    )
    .await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "not-found", "{out}");
    assert!(text(&out, "/error/message").contains("list"), "{out}");
    let (err, out) = jobs(&mcp, json!({"action": "logs"})).await;
    assert!(err);
    assert_eq!(out["error"]["field"], "id", "{out}");

    // Killed outside infra: no exit status, so the job is reported lost, with what that means.
    let marker = format!("sleep {}", 910_000 + std::process::id() % 10_000);
    let out = detach(&s, &mcp, &marker, json!({})).await;
    let id = text(&out, "/job/id").to_string();
    let pid = out["job"]["pid"].as_u64().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let (err, st) = jobs(
        &mcp,
        json!({"action": "wait", "id": id, "timeout_ms": 10000}),
    )
    .await;
    assert!(!err, "{st}");
    assert_eq!(st["state"], "lost", "{st}");
    assert!(text(&st, "/hint").contains("killed outside infra"), "{st}");

    // An unreachable target: `list` still answers, with the last known state and why.
    let marker = format!("sleep {}", 920_000 + std::process::id() % 10_000);
    let out = detach(&s, &mcp, &marker, json!({})).await;
    let id2 = text(&out, "/job/id").to_string();
    s.sshd.kill_all();
    let (err, list) = jobs(&mcp, json!({"action": "list"})).await;
    assert!(!err, "{list}");
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id2.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(item["state"], "running", "{item}");
    assert!(item["probe_error"].is_string(), "{item}");
    // Back again: the job kept running without sshd, and cancel reaches it.
    s.sshd.restart();
    let (err, c) = jobs(&mcp, json!({"action": "cancel", "id": id2})).await;
    assert!(!err, "{c}");
    assert_eq!(c["state"], "cancelled", "{c}");
    assert!(processes_matching(&marker).is_empty());

    // Narrowing the policy narrows `jobs` too: it acts under the starting plugin's grants.
    s.home.policy(
        "[plugin.ssh.ssh]\ntargets = [\"other\"]\n[plugin.ssh.artifacts]\n[plugin.ssh.log]\n",
    );
    mcp.close().await;
    let mcp = s.home.mcp().await;
    let (err, out) = jobs(&mcp, json!({"action": "status", "id": id})).await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn jobs_wait_sends_progress_while_the_job_runs() {
    use infra_tests::progress::{Era, connect};
    let s = setup();
    let mcp = s.home.mcp().await;
    let out = detach(&s, &mcp, "sleep 4; echo finished", json!({})).await;
    let id = text(&out, "/job/id").to_string();
    mcp.close().await;
    let (client, progress) = connect(&s.home, Era::Initialize).await;
    let params = rmcp::model::CallToolRequestParams::new("jobs").with_arguments(
        json!({"action": "wait", "id": id, "timeout_ms": 30000})
            .as_object()
            .unwrap()
            .clone(),
    );
    let r = client.call_tool(params).await.unwrap();
    let out = r.structured_content.unwrap();
    assert_eq!(out["state"], "exited", "{out}");
    let seen = progress.lock().unwrap().clone();
    assert!(seen.len() >= 2, "progress while waiting: {seen:?}");
    assert!(
        seen.iter()
            .all(|p| p.message.as_deref().is_some_and(|m| m.contains(&id))),
        "{seen:?}"
    );
    client.close().await;
}

// Hardening: hostile arguments, concurrent servers, redaction gaps, sizes (issue 9).

#[tokio::test]
async fn a_hostile_cwd_runs_nothing_on_the_target_and_names_the_directory() {
    let s = setup();
    let mcp = s.home.mcp().await;
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("PWNED_x");
    let p = planted.display();
    for cwd in [
        format!("/nonexistent/$(touch {p})"),
        format!("/nonexistent/`touch {p}`"),
        format!("/nonexistent/\"; touch {p}; echo \""),
        format!("/nonexistent/\\\"; touch {p}; echo \\"),
    ] {
        let (err, out) = exec(
            &mcp,
            "plain",
            json!({"command": format!("touch {p}.after"), "cwd": cwd}),
        )
        .await;
        assert!(!err, "{out}");
        assert!(!planted.exists(), "cwd {cwd:?} ran a command on the target");
        assert_eq!(out["command"]["exit_code"], 126, "{out}");
        assert!(
            text(&out, "/command/stderr").contains(&format!("cwd: cannot change to {cwd}\n")),
            "the error names the directory as given: {out}"
        );
    }
    assert!(
        !dir.path().join("PWNED_x.after").exists(),
        "the command ran after a failed cd"
    );
    mcp.close().await;
}

/// Runs `true` on each of `targets` through `mcp`, all at once; the failures, if any.
async fn exec_all(mcp: &std::sync::Arc<Mcp>, targets: &[String]) -> Vec<Value> {
    let mut calls = tokio::task::JoinSet::new();
    for t in targets {
        let (mcp, t) = (mcp.clone(), t.clone());
        calls.spawn(async move { exec(&mcp, &t, json!({"command": "true"})).await });
    }
    let mut failed = Vec::new();
    while let Some(r) = calls.join_next().await {
        let (err, out) = r.expect("call task");
        if err {
            failed.push(out);
        }
    }
    failed
}

#[tokio::test]
async fn two_servers_recording_tofu_keys_at_once_lose_no_record() {
    // 2 sshd × 16 loopback addresses: 32 endpoints, each recorded on first use.
    let (config, aliases) = loopback_aliases(15);
    let servers = [Sshd::start_with(&config), Sshd::start_with(&config)];
    let home = Home::new();
    let mut targets = serde_json::Map::new();
    let mut names: [Vec<String>; 2] = Default::default();
    let mut want = std::collections::BTreeMap::new();
    for (i, sshd) in servers.iter().enumerate() {
        for host in std::iter::once("127.0.0.1").chain(aliases.iter().map(String::as_str)) {
            let name = format!("s{i}-{host}");
            let mut t = sshd.target(false, None);
            t["host"] = json!(host);
            t["host_key"] = json!("tofu");
            targets.insert(name.clone(), t);
            names[i].push(name);
            want.insert(
                format!("{host}:{}", sshd.port),
                sshd.host_fingerprint.clone(),
            );
        }
    }
    write_targets(&home, Value::Object(targets));
    let known = home.path().join("known_hosts.json");
    for round in 0..3 {
        let _ = std::fs::remove_file(&known);
        let (a, b) = tokio::join!(home.mcp(), home.mcp());
        let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
        let (fa, fb) = tokio::join!(exec_all(&a, &names[0]), exec_all(&b, &names[1]));
        assert!(
            fa.is_empty() && fb.is_empty(),
            "round {round}: {fa:?} {fb:?}"
        );
        for m in [a, b] {
            if let Ok(m) = std::sync::Arc::try_unwrap(m) {
                m.close().await;
            }
        }
        let recorded: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&std::fs::read_to_string(&known).unwrap()).unwrap();
        assert_eq!(recorded, want, "round {round}: records were lost");
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&known).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "known_hosts.json is {mode:o}");
}

#[tokio::test]
async fn two_servers_starting_jobs_lose_none_of_them() {
    let s = setup();
    let (a, b) = tokio::join!(s.home.mcp(), s.home.mcp());
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (x, y) = tokio::join!(
            detach(&s, &a, "true", json!({})),
            detach(&s, &b, "true", json!({}))
        );
        ids.push(text(&x, "/job/id").to_string());
        ids.push(text(&y, "/job/id").to_string());
    }
    // Each server sees the jobs the other started.
    for (mcp, id) in [(&a, &ids[1]), (&b, &ids[0])] {
        let (err, st) = jobs(mcp, json!({"action": "status", "id": id})).await;
        assert!(!err, "{st}");
    }
    a.close().await;
    b.close().await;
    let mcp = s.home.mcp().await;
    let (err, list) = jobs(&mcp, json!({"action": "list", "limit": 100})).await;
    assert!(!err, "{list}");
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{id} was lost: {list}");
    }
    mcp.close().await;
}

/// A target that authenticates with its key and also names `password` (a `file:` reference):
/// the password is a registered secret the target never needs to see.
fn target_with_secret(sshd: &Sshd, home: &Home, dir: &std::path::Path, secret: &str) -> PathBuf {
    let file = dir.join("secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let mut t = sshd.target(false, None);
    t["password"] = json!(format!("file:{}", file.display()));
    write_targets(home, json!({ "plain": t }));
    file
}

#[tokio::test]
async fn a_multi_line_secret_is_scrubbed_through_a_pty_too() {
    let sshd = Sshd::start();
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = format!(
        "{}\n{}",
        unique("canary-line-one"),
        unique("canary-line-two")
    );
    let file = target_with_secret(&sshd, &home, dir.path(), &secret);
    let mcp = home.mcp().await;
    for pty in [false, true] {
        let (err, out) = exec(
            &mcp,
            "plain",
            json!({"command": format!("cat {}", file.display()), "pty": pty}),
        )
        .await;
        assert!(!err, "{out}");
        let stdout = text(&out, "/command/stdout");
        assert!(!stdout.contains("canary-line"), "pty {pty}: {stdout:?}");
        assert!(stdout.contains("[REDACTED]"), "pty {pty}: {stdout:?}");
    }
    mcp.close().await;
}

#[tokio::test]
async fn the_key_file_is_scrubbed_wherever_it_is_shown() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copied_key");
    std::fs::copy(&s.sshd.key, &copy).unwrap();
    let key = std::fs::read_to_string(&s.sshd.key).unwrap();
    let body: Vec<&str> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect();
    assert!(body.len() >= 3, "{key}");
    let mcp = s.home.mcp().await;
    let c = copy.display();
    for (command, pty) in [
        (format!("cat {c}"), false),
        (format!("cat {c}"), true),
        (format!("sed -n 3p {c}"), false),
    ] {
        let (err, out) = exec(&mcp, "plain", json!({"command": command, "pty": pty})).await;
        assert!(!err, "{out}");
        let stdout = text(&out, "/command/stdout");
        for line in &body {
            assert!(!stdout.contains(line), "{command} (pty {pty}): {stdout}");
        }
        assert!(stdout.contains("[REDACTED]"), "{command}: {stdout}");
    }
    mcp.close().await;
}

#[tokio::test]
async fn sizes_asked_for_are_clamped_to_the_policy_limits() {
    let s = setup();
    s.home.policy(
        "[limits]\ncapture_bytes = 1000\nartifact_bytes = 3000\n\
         [plugin.ssh.ssh]\ntargets = [\"*\"]\n[plugin.ssh.artifacts]\n[plugin.ssh.log]\n",
    );
    let mcp = s.home.mcp().await;
    let (err, out) = exec(
        &mcp,
        "plain",
        json!({"command": "head -c 10000 /dev/zero | tr '\\0' a", "max_output": 1_000_000}),
    )
    .await;
    assert!(!err, "{out}");
    let c = &out["command"];
    assert_eq!(c["stdout"].as_str().unwrap().len(), 1000, "{out}");
    assert_eq!(c["stdout_truncated"], true, "{out}");
    assert_eq!(c["stdout_artifact"]["size"], 3000, "{out}");
    let audit = std::fs::read_to_string(s.home.path().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("stdout artifact cut at limits.artifact_bytes (3000 bytes)"),
        "{audit}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (dir.path().join("small"), dir.path().join("large"));
    std::fs::write(&small, vec![b's'; 2000]).unwrap();
    std::fs::write(&large, vec![b'l'; 5000]).unwrap();
    let download = |path: &std::path::Path| json!({"action": "sftp_download", "target": "plain", "path": path, "max_bytes": 1_000_000});
    let (err, out) = mcp.call("ssh", download(&small)).await;
    assert!(!err, "{out}");
    let (err, out) = mcp.call("ssh", download(&large)).await;
    assert!(err, "{out}");
    let msg = text(&out, "/error/message");
    assert!(
        msg.contains("limits.artifact_bytes (3000)") && msg.contains("policy.toml"),
        "{msg}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn a_reflected_secret_cut_at_any_position_leaves_no_part_of_it() {
    let sshd = Sshd::start();
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = unique("canary-reflected");
    let file = target_with_secret(&sshd, &home, dir.path(), &secret);
    let mcp = home.mcp().await;
    let f = file.display();
    let n = secret.len();
    let want = "head-[REDACTED]-tail";
    for cut in 0..=n {
        // The secret leaves the target in two writes split at `cut` (two SSH data messages),
        // and the inline output is cut where the secret's `cut`-th byte would be.
        let command = format!(
            "printf head-; head -c {cut} {f}; sleep 0.05; head -c {n} {f} | tail -c +{}; printf %s -tail",
            cut + 1
        );
        let max = "head-".len() + cut;
        let (err, out) = exec(
            &mcp,
            "plain",
            json!({"command": command, "max_output": max}),
        )
        .await;
        assert!(!err, "{out}");
        let c = &out["command"];
        let stdout = text(&out, "/command/stdout");
        let full = if c["stdout_truncated"] == true {
            let uri = text(&out, "/command/stdout_artifact/uri");
            let (err, a) = mcp
                .call("artifacts", json!({"action": "get", "uri": uri}))
                .await;
            assert!(!err, "{a}");
            text(&a, "/text").to_string()
        } else {
            stdout.to_string()
        };
        assert_eq!(full, want, "cut {cut}");
        assert_eq!(stdout, &want[..max.min(want.len())], "cut {cut}");
        for w in secret.as_bytes().windows(4) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(
                !stdout.contains(w) && !full.contains(w),
                "cut {cut}: {w} in {out}"
            );
        }
    }
    mcp.close().await;
}
