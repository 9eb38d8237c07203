//! The `local` tool: a shell and the whole filesystem, locked twice. Without
//! `INFRA_UNSAFE_LOCAL=1` it is not listed, a call by name is refused (and audited) and runs
//! nothing, and the host refuses the unsafe `fs`/`exec` grants it stands on to any plugin, even
//! under a policy that grants them. With the flag every action works on real paths, and every
//! call is audited with its capability events.

use std::path::Path;

use infra_tests::{Home, Mcp, audit_records, canary, test_plugin, text};
use serde_json::{Value, json};

/// `infra serve` on `home`, with `INFRA_UNSAFE_LOCAL=1` when `unsafe_local`.
async fn serve(home: &Home, unsafe_local: bool) -> Mcp {
    serve_with(home, unsafe_local, &[]).await
}

/// [`serve`] with extra variables in the server's environment.
async fn serve_with(home: &Home, unsafe_local: bool, env: &[(&str, &str)]) -> Mcp {
    home.mcp_with(|c| {
        if unsafe_local {
            c.env("INFRA_UNSAFE_LOCAL", "1");
        }
        for (k, v) in env {
            c.env(k, v);
        }
    })
    .await
}

/// The end record of the call traced `trace_id`.
fn end_record(home: &Home, trace_id: &str) -> Value {
    audit_records(home.path())
        .into_iter()
        .find(|r| r["kind"] == "end" && r["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("no end record for trace {trace_id}"))
}

/// The capability events of the call traced `trace_id` whose capability is `cap`.
fn events(home: &Home, trace_id: &str, cap: &str) -> Vec<Value> {
    end_record(home, trace_id)["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["cap"] == cap)
        .cloned()
        .collect()
}

/// The error of a failed call, with its kind checked.
fn refused<'a>(is_error: bool, out: &'a Value, kind: &str, what: &str) -> &'a str {
    assert!(is_error, "{what}: the call must fail; got {out:#}");
    assert_eq!(out["error"]["kind"], kind, "{what}: {out:#}");
    text(out, "/error/message")
}

/// `local` with `args` and a trace id, on a server that has the flag.
async fn local(server: &Mcp, trace: &str, mut args: Value) -> (bool, Value) {
    args["trace_id"] = json!(trace);
    server.call("local", args).await
}

/// A path under `dir` as the absolute text the tool takes.
fn at(dir: &Path, rel: &str) -> String {
    dir.join(rel).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_local_is_unlisted_and_a_call_by_name_runs_nothing() {
    let home = Home::new();
    let scratch = tempfile::tempdir().expect("temp dir");
    let marker = scratch.path().join("ran");
    let server = serve(&home, false).await;

    let names = server.tool_names().await;
    assert!(
        !names.iter().any(|n| n == "local"),
        "local must not be listed without the flag: {names:?}"
    );

    // By name, and by the name of the tool infra replaces: refused before the plugin runs.
    for (tool, trace) in [("local", "local-off"), ("mcp_local", "mcp-local-off")] {
        let command = format!("touch {}", marker.display());
        let (is_error, out) = server
            .call(
                tool,
                json!({"action": "exec", "command": command, "trace_id": trace}),
            )
            .await;
        let message = refused(is_error, &out, "denied", tool);
        assert!(
            message.contains("INFRA_UNSAFE_LOCAL=1") && message.contains("unsafe = true"),
            "the refusal names the flag and why: {message}"
        );
        let end = end_record(&home, trace);
        assert_eq!(end["outcome"], "denied", "{end:#}");
        let begin = audit_records(home.path())
            .into_iter()
            .find(|r| r["kind"] == "begin" && r["trace_id"] == trace)
            .expect("a begin record");
        assert_eq!(begin["tool"], "local", "{begin:#}");
        assert_eq!(
            begin["plugin"], "local",
            "audited under the plugin: {begin:#}"
        );
        assert!(
            end["events"].as_array().is_none_or(Vec::is_empty),
            "no capability was touched: {end:#}"
        );
    }
    assert!(!marker.exists(), "the refused command must not have run");

    // `help` and `plugins` say why it is missing.
    let (is_error, out) = server.call("help", json!({"tool": "local"})).await;
    let message = refused(is_error, &out, "denied", "help local");
    assert!(message.contains("INFRA_UNSAFE_LOCAL=1"), "{message}");
    let (_, out) = server.call("help", json!({})).await;
    let off = out["off"]
        .as_array()
        .expect("help lists the tools that are off");
    assert!(
        off.iter()
            .any(|o| o["tools"] == json!(["local"]) && o["why"].as_str().is_some()),
        "{out:#}"
    );
    let (_, out) = server
        .call("plugins", json!({"action": "inspect", "name": "local"}))
        .await;
    assert_eq!(out["unsafe"], true, "{out:#}");
    assert!(
        out["off"]
            .as_str()
            .is_some_and(|w| w.contains("INFRA_UNSAFE_LOCAL=1")),
        "{out:#}"
    );
    let (_, out) = server
        .call("plugins", json!({"action": "inspect", "name": "http"}))
        .await;
    assert_eq!(out["unsafe"], false);
    assert!(out["off"].is_null(), "a safe plugin is never off: {out:#}");
    server.close().await;
}

/// The policy the second lock is tried under: the probe plugins hold exactly the unsafe grants
/// the default policy gives `local` (and nothing else), and `local` has them too.
const UNSAFE_GRANTS: &str = r#"
[plugin.execprobe.exec]
unsafe = true
read_only = false
network = true
env = ["*"]

[plugin.fsprobe.fs]
unsafe = true
read_only = false

[plugin.local.exec]
unsafe = true
read_only = false
network = true
env = ["*"]

[plugin.local.fs]
unsafe = true
read_only = false
"#;

/// A state directory with the probe plugins installed under [`UNSAFE_GRANTS`].
fn unsafe_home() -> Home {
    let home = Home::new();
    home.policy(UNSAFE_GRANTS)
        .install_plugin(
            "execprobe",
            &test_plugin("execprobe"),
            include_str!("../plugins/execprobe/plugin.toml"),
        )
        .install_plugin(
            "fsprobe",
            &test_plugin("fsprobe"),
            include_str!("../plugins/fsprobe/plugin.toml"),
        );
    home
}

/// The second lock: a policy that grants `unsafe = true` gives a plugin nothing beyond its
/// allowlists while the flag is off. The probe plugins ask the host for exactly what `local`
/// would (the root `/`, a shell, an absolute path) and are refused, audited; the same requests
/// succeed once the flag is on, so the refusals are the flag's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_unsafe_grants_give_nothing_even_when_the_policy_has_them() {
    let home = unsafe_home();
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("ran");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "outside every root\n").unwrap();
    let shell = json!({"program": "sh", "args": ["-c", format!("touch {}", marker.display())],
                       "root": "/", "cwd": dir.path(), "trace_id": "probe-exec"});
    let read = json!({"op": "read", "root": "/", "path": secret, "max_inline": 1024,
                      "trace_id": "probe-fs"});

    let server = serve(&home, false).await;
    let names = server.tool_names().await;
    assert!(!names.iter().any(|n| n == "local"), "{names:?}");
    let (is_error, out) = server.call("execprobe", shell.clone()).await;
    // Refused, naming the missing flag (the grant says unsafe = true), and audited.
    let message = refused(is_error, &out, "denied", "a shell on / without the flag");
    assert!(message.contains("INFRA_UNSAFE_LOCAL=1"), "{message}");
    assert!(!marker.exists(), "the shell must not have run");
    let ev = events(&home, "probe-exec", "exec");
    assert!(
        !ev.is_empty() && ev.iter().all(|e| e["decision"] == "deny"),
        "the refusal is audited: {ev:#?}"
    );
    let (is_error, out) = server.call("fsprobe", read.clone()).await;
    let message = refused(is_error, &out, "denied", "the root / without the flag");
    assert!(message.contains("INFRA_UNSAFE_LOCAL=1"), "{message}");
    assert!(!out.to_string().contains("outside every root"), "{out:#}");
    let ev = events(&home, "probe-fs", "fs");
    assert!(
        !ev.is_empty() && ev.iter().all(|e| e["decision"] == "deny"),
        "the refusal is audited: {ev:#?}"
    );
    server.close().await;

    // The same requests with the flag: now they reach the machine.
    let server = serve(&home, true).await;
    let mut again = shell.clone();
    again["trace_id"] = json!("probe-exec-on");
    let (is_error, out) = server.call("execprobe", again).await;
    assert!(!is_error, "with the flag the unsafe grant holds: {out:#}");
    assert!(marker.exists(), "the shell ran with the flag");
    let mut again = read.clone();
    again["trace_id"] = json!("probe-fs-on");
    let (is_error, out) = server.call("fsprobe", again).await;
    assert!(!is_error, "with the flag the unsafe grant holds: {out:#}");
    assert!(out.to_string().contains("outside every root"), "{out:#}");
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_flag_it_is_listed_and_exec_and_batch_run_real_commands() {
    let home = Home::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    // A value in infra's own environment that no command of `local` may see: the host sets a
    // program's environment, the flag does not change that.
    let secret = canary("local-env-canary");
    let server = serve_with(&home, true, &[("LOCAL_ENV_CANARY", &secret)]).await;
    assert!(server.tool_names().await.iter().any(|n| n == "local"));
    let (is_error, out) = local(
        &server,
        "local-env-clean",
        json!({"action": "exec", "command": "env"}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    let env = text(&out, "/command/stdout");
    assert!(
        !env.contains(&secret) && !env.contains("LOCAL_ENV_CANARY"),
        "infra's environment leaked into a command: {env}"
    );
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");

    // A shell line: exit code, both streams, the working directory.
    let (is_error, out) = local(
        &server,
        "local-exec",
        json!({"action": "exec", "command": "pwd; echo oops >&2; exit 3", "cwd": d}),
    )
    .await;
    assert!(
        !is_error,
        "a non-zero exit is an answer, not an error: {out:#}"
    );
    let c = &out["command"];
    assert_eq!(c["exit_code"], 3, "{out:#}");
    assert_eq!(
        c["stdout"].as_str().map(str::trim_end),
        Some(d.canonicalize().unwrap().to_str().unwrap())
    );
    assert_eq!(c["stderr"], "oops\n");
    let ev = events(&home, "local-exec", "exec");
    assert_eq!(ev.len(), 1, "one exec event: {ev:#?}");
    assert_eq!(ev[0]["decision"], "allow");
    assert!(
        ev[0]["target"]
            .as_str()
            .is_some_and(|t| t.contains("echo oops")),
        "the event names the command: {ev:#?}"
    );

    // A program with arguments (no shell: `$HOME` stays literal), variables and stdin.
    let (is_error, out) = local(
        &server,
        "local-args",
        json!({"action": "exec", "command": "printf", "args": ["%s|%s", "$HOME", "b"]}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert_eq!(out["command"]["stdout"], "$HOME|b");
    let (_, out) = local(
        &server,
        "local-env",
        json!({"action": "exec", "command": "echo \"$GREETING\"; cat", "env": {"GREETING": "hi"},
               "stdin": "from stdin"}),
    )
    .await;
    assert_eq!(out["command"]["stdout"], "hi\nfrom stdin", "{out:#}");

    // Output over max_output: cut inline, the whole stream in an artifact.
    let (is_error, out) = local(
        &server,
        "local-big",
        json!({"action": "exec", "command": "head -c 100000 /dev/zero | tr '\\0' a",
               "max_output": 1000}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    let c = &out["command"];
    assert_eq!(c["stdout_truncated"], true, "{out:#}");
    assert_eq!(c["stdout"].as_str().map(str::len), Some(1000));
    assert_eq!(c["stdout_artifact"]["size"], 100_000, "{out:#}");

    // A batch stops at the first failure by default, and runs on with stop_on_error false.
    let steps = json!(["echo one", {"command": "false"}, "echo three"]);
    let (is_error, out) = local(
        &server,
        "local-batch",
        json!({"action": "batch", "commands": steps, "cwd": d}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert_eq!(out["results"].as_array().map(Vec::len), Some(2), "{out:#}");
    assert_eq!(
        (out["failed"].clone(), out["skipped"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(out["results"][0]["stdout"], "one\n");
    assert_eq!(events(&home, "local-batch", "exec").len(), 2);
    let (_, out) = local(
        &server,
        "local-batch-on",
        json!({"action": "batch", "commands": steps, "stop_on_error": false}),
    )
    .await;
    assert_eq!(out["results"].as_array().map(Vec::len), Some(3), "{out:#}");
    assert_eq!(out["results"][2]["stdout"], "three\n");
    assert_eq!(out["skipped"], 0);

    // A relative working directory is refused before anything runs.
    let (is_error, out) = local(
        &server,
        "local-rel",
        json!({"action": "exec", "command": "true", "cwd": "tmp"}),
    )
    .await;
    refused(is_error, &out, "invalid", "relative cwd");
    assert_eq!(out["error"]["field"], "cwd");
    assert!(events(&home, "local-rel", "exec").is_empty());
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_flag_every_fs_action_works_on_real_paths_and_is_audited() {
    let home = Home::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let server = serve(&home, true).await;
    let file = at(d, "a/b.txt");

    // fs_write: a new file (parents made), refused over an existing one, then replaced.
    let write = |trace: &'static str, extra: Value| {
        let mut args = json!({"action": "fs_write", "path": file, "mkdirs": true, "mode": "600"});
        if let (Some(a), Value::Object(e)) = (args.as_object_mut(), extra) {
            a.extend(e);
        }
        local(&server, trace, args)
    };
    let (is_error, out) = write("fs-write", json!({"content": "first\n"})).await;
    assert!(!is_error, "{out:#}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "first\n");
    assert_eq!(out["file"]["kind"], "file");
    assert_eq!(out["file"]["mode"], "600", "{out:#}");
    let ev = events(&home, "fs-write", "fs");
    assert!(
        !ev.is_empty() && ev.iter().all(|e| e["decision"] == "allow"),
        "{ev:#?}"
    );
    assert!(
        ev.iter()
            .any(|e| e["target"].as_str().is_some_and(|t| t.contains("b.txt"))),
        "the event names the path: {ev:#?}"
    );
    let (is_error, out) = write("fs-write-again", json!({"content": "second\n"})).await;
    assert!(is_error, "an existing file needs overwrite: {out:#}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "first\n");
    let (is_error, out) = write(
        "fs-write-over",
        json!({"content_base64": "c2Vjb25kCg==", "overwrite": true}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "second\n");

    // fs_read: inline text, base64, and a file over max_bytes as an artifact.
    let (is_error, out) = local(
        &server,
        "fs-read",
        json!({"action": "fs_read", "path": file}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert_eq!(
        (out["content"].clone(), out["encoding"].clone()),
        (json!("second\n"), json!("utf8"))
    );
    let (_, out) = local(
        &server,
        "fs-read-b64",
        json!({"action": "fs_read", "path": file, "encoding": "base64"}),
    )
    .await;
    assert_eq!(out["content"], "c2Vjb25kCg==", "{out:#}");
    let big = at(d, "big.bin");
    std::fs::write(&big, vec![7u8; 200_000]).unwrap();
    let (is_error, out) = local(
        &server,
        "fs-read-big",
        json!({"action": "fs_read", "path": big, "max_bytes": 1024}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert!(out["content"].is_null(), "too big to inline: {out:#}");
    assert_eq!(out["artifact"]["size"], 200_000, "{out:#}");
    assert_eq!(out["file"]["size"], 200_000);
    // …and an artifact written back to a file, streamed by the host.
    let uri = text(&out, "/artifact/uri").to_string();
    let copy = at(d, "copy.bin");
    let (is_error, out) = local(
        &server,
        "fs-write-artifact",
        json!({"action": "fs_write", "path": copy, "content_artifact": uri}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert_eq!(std::fs::read(&copy).unwrap(), vec![7u8; 200_000]);

    // fs_mkdir, fs_stat, fs_list (flat and recursive).
    let (is_error, out) = local(
        &server,
        "fs-mkdir",
        json!({"action": "fs_mkdir", "path": at(d, "x/y")}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert!(d.join("x/y").is_dir());
    assert_eq!(out["file"]["kind"], "directory");
    let (_, out) = local(
        &server,
        "fs-stat",
        json!({"action": "fs_stat", "path": big}),
    )
    .await;
    assert_eq!(
        (out["file"]["kind"].clone(), out["file"]["size"].clone()),
        (json!("file"), json!(200_000))
    );
    let listed = |out: &Value| -> Vec<String> {
        out["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["path"].as_str())
            // Relative to the root `/` or absolute: either way, relative to `d` here.
            .map(|p| format!("/{}", p.trim_start_matches('/')))
            .map(|p| {
                p.trim_start_matches(d.to_str().unwrap())
                    .trim_start_matches('/')
                    .to_string()
            })
            .collect()
    };
    let (is_error, out) = local(&server, "fs-list", json!({"action": "fs_list", "path": d})).await;
    assert!(!is_error, "{out:#}");
    let flat = listed(&out);
    assert!(
        flat.contains(&"a".to_string()) && flat.contains(&"x".to_string()),
        "{flat:?}"
    );
    assert!(!flat.iter().any(|p| p.contains("b.txt")), "flat: {flat:?}");
    let (_, out) = local(
        &server,
        "fs-list-deep",
        json!({"action": "fs_list", "path": d, "recursive": true}),
    )
    .await;
    let deep = listed(&out);
    assert!(deep.iter().any(|p| p.ends_with("a/b.txt")), "{deep:?}");
    assert!(deep.iter().any(|p| p.ends_with("x/y")), "{deep:?}");
    assert_eq!(out["entries_truncated"], false);

    // fs_rm: a non-empty directory needs recursive; force makes a missing path an answer.
    let (is_error, out) = local(
        &server,
        "fs-rm",
        json!({"action": "fs_rm", "path": at(d, "a")}),
    )
    .await;
    assert!(is_error, "a non-empty directory without recursive: {out:#}");
    assert!(d.join("a/b.txt").exists());
    let (is_error, out) = local(
        &server,
        "fs-rm-r",
        json!({"action": "fs_rm", "path": at(d, "a"), "recursive": true}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert_eq!(out["removed"], true);
    assert!(!d.join("a").exists());
    let (is_error, out) = local(
        &server,
        "fs-rm-missing",
        json!({"action": "fs_rm", "path": at(d, "a"), "force": true}),
    )
    .await;
    assert!(!is_error, "{out:#}");
    assert_eq!(out["removed"], false);
    let (is_error, out) = local(
        &server,
        "fs-rm-gone",
        json!({"action": "fs_rm", "path": at(d, "a")}),
    )
    .await;
    refused(is_error, &out, "not-found", "a missing path without force");

    // A relative path is refused naming the field.
    let (is_error, out) = local(
        &server,
        "fs-rel",
        json!({"action": "fs_stat", "path": "etc/passwd"}),
    )
    .await;
    refused(is_error, &out, "invalid", "relative path");
    assert_eq!(out["error"]["field"], "path");

    // Every call, allowed or not, has its end record.
    for trace in [
        "fs-write",
        "fs-write-again",
        "fs-read-big",
        "fs-list-deep",
        "fs-rm-r",
        "fs-rel",
    ] {
        end_record(&home, trace);
    }
    server.close().await;
}
