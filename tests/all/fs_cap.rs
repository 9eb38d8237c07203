//! The `fs` capability through MCP, driven by the `fsprobe` test plugin, which forwards an
//! agent's raw root, path and options to the host unchecked — so each adversarial test is what a
//! hostile plugin (or a prompt-injected agent) would really send. Roots are real temp
//! directories; "outside" is a real directory beside them holding a canary the tests prove no
//! call ever reads, writes or removes. Every refusal is checked in the audit record too.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use infra_tests::{Home, Mcp, audit_records, canary, test_plugin, wait_for};
use serde_json::{Value, json};

/// The fsprobe plugin's manifest, as shipped beside its source.
const MANIFEST: &str = include_str!("../plugins/fsprobe/plugin.toml");

/// Inline reads are clamped to this (`[limits] capture_bytes`).
const CAPTURE: usize = 4096;
/// Artifacts hold at most this (`[limits] artifact_bytes`).
const ARTIFACT_MAX: usize = 64 * 1024;

/// A server with `fsprobe` installed, three roots (`work` writable and granted, `ro` read-only
/// and granted, `other` defined but not granted) and a directory outside all of them.
struct Bench {
    home: Home,
    server: Mcp,
    _dirs: tempfile::TempDir,
    work: PathBuf,
    ro: PathBuf,
    outside: PathBuf,
    /// A secret the host knows (an http profile's token): scrubbed from everything read.
    secret: String,
}

/// The canary file outside every root.
const CANARY: &str = "outside-canary-7d1f0c";

impl Bench {
    /// `grant` is the `[plugin.fsprobe.fs]` body; `env` the server's extra environment. The
    /// plugin may store artifacts.
    async fn start(grant: &str, env: &[(&str, &str)]) -> Bench {
        Bench::start_with(grant, env, "[plugin.fsprobe.artifacts]\n").await
    }

    /// Like [`Bench::start`], with `more` as the rest of the policy.
    async fn start_with(grant: &str, env: &[(&str, &str)], more: &str) -> Bench {
        let dirs = tempfile::tempdir().expect("temp dir");
        let [work, ro, other, outside] =
            ["work", "ro", "other", "outside"].map(|d| dirs.path().join(d));
        for d in [&work, &ro, &other, &outside] {
            std::fs::create_dir(d).expect("mkdir");
        }
        std::fs::write(outside.join("secret.txt"), CANARY).expect("canary");
        std::fs::write(ro.join("kept.txt"), "read-only content").expect("ro file");
        let secret = canary("fs-secret");
        let token = dirs.path().join("token");
        std::fs::write(&token, &secret).expect("token file");
        let home = Home::new();
        home.profiles(
            &json!({"api": {"type": "http", "base_url": "http://127.0.0.1:9/",
            "auth": {"type": "bearer", "token": format!("file:{}", token.display())}}}),
        );
        home.policy(&format!(
            "[limits]\ncapture_bytes = {CAPTURE}\nartifact_bytes = {ARTIFACT_MAX}\n\n\
             [roots]\nwork = {{ path = {:?}, read_only = false }}\nro = {{ path = {:?}, read_only = true }}\n\
             other = {{ path = {:?} }}\n\n[plugin.fsprobe.fs]\n{grant}\n\n{more}",
            work.display().to_string(),
            ro.display().to_string(),
            other.display().to_string(),
        ))
        .install_plugin("fsprobe", &test_plugin("fsprobe"), MANIFEST);
        let server = home
            .mcp_with(|c| {
                for (k, v) in env {
                    c.env(k, v);
                }
            })
            .await;
        Bench {
            home,
            server,
            _dirs: dirs,
            work,
            ro,
            outside,
            secret,
        }
    }

    /// The default bench: `work` and `ro` granted, writes allowed by the grant.
    async fn default() -> Bench {
        Bench::start(
            "roots = [\"work\", \"ro\", \"ghost\"]\nread_only = false",
            &[],
        )
        .await
    }

    /// Calls fsprobe with `args`.
    async fn call(&self, args: Value) -> (bool, Value) {
        self.server.call("fsprobe", args).await
    }

    /// A call that must succeed; its result.
    async fn ok(&self, args: Value) -> Value {
        let (is_error, out) = self.call(args.clone()).await;
        assert!(
            !is_error && out["ok"] == true,
            "{args} must succeed: {out:#}\nstderr:\n{}",
            self.server.stderr()
        );
        out
    }

    /// A call that must fail with error kind `kind`; its message.
    async fn refused(&self, args: Value, kind: &str) -> String {
        let (is_error, out) = self.call(args.clone()).await;
        assert!(is_error && out["ok"] == false, "{args} must fail: {out:#}");
        assert_eq!(out["error"]["kind"], kind, "{args}: {out:#}");
        out["error"]["message"]
            .as_str()
            .expect("a message")
            .to_string()
    }

    /// Every fs event in the audit record so far, once `n` calls have ended.
    async fn fs_events(&self, n: usize) -> Vec<Value> {
        let dir = self.home.path().to_path_buf();
        // End records carry the call id; the begin record names the tool.
        let ended = |dir: &Path| {
            let records = audit_records(dir);
            let ids: Vec<Value> = records
                .iter()
                .filter(|r| r["kind"] == "begin" && r["tool"] == "fsprobe")
                .map(|r| r["call_id"].clone())
                .collect();
            records
                .into_iter()
                .filter(|r| r["kind"] == "end" && ids.contains(&r["call_id"]))
                .collect::<Vec<_>>()
        };
        wait_for(&format!("{n} fsprobe calls in the audit record"), || {
            ended(&dir).len() >= n
        })
        .await;
        ended(&dir)
            .iter()
            .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["cap"] == "fs")
            .collect()
    }

    /// The outside directory is exactly as the bench made it.
    fn outside_untouched(&self) {
        let names: Vec<String> = std::fs::read_dir(&self.outside)
            .expect("outside")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["secret.txt"], "nothing created or removed outside");
        assert_eq!(
            std::fs::read_to_string(self.outside.join("secret.txt")).expect("canary"),
            CANARY
        );
    }

    /// Names in `dir` that a write left behind as temporary files.
    fn temp_files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".infra-tmp-"))
            .collect()
    }

    /// Artifact data files stored so far.
    fn artifact_count(&self) -> usize {
        std::fs::read_dir(self.home.path().join("artifacts"))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        !n.ends_with(".json") && !n.starts_with('.')
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

/// The text of an artifact as the store holds it.
fn artifact_text(home: &Home, uri: &str) -> Vec<u8> {
    let id = uri.strip_prefix("artifact://").expect("artifact URI");
    std::fs::read(home.path().join("artifacts").join(id)).expect("artifact data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_read_list_and_stat_under_a_granted_root() {
    let b = Bench::default().await;

    let out = b
        .ok(
            json!({"op": "write", "root": "work", "path": "a/b/hello.txt",
                   "content": "hello, fs", "mkdirs": true, "mode": 0o600}),
        )
        .await;
    assert_eq!(out["stat"]["kind"], "file", "{out:#}");
    assert_eq!(out["stat"]["size"], 9);
    assert_eq!(out["stat"]["mode"], 0o600);
    let on_disk = b.work.join("a/b/hello.txt");
    assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), "hello, fs");
    assert_eq!(
        std::fs::metadata(&on_disk).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert!(Bench::temp_files(&b.work.join("a/b")).is_empty());

    let out = b
        .ok(json!({"op": "read", "root": "work", "path": "a/b/hello.txt", "max_inline": 1024}))
        .await;
    assert_eq!(out["data"], "hello, fs", "{out:#}");
    assert!(out["artifact"].is_null());
    assert_eq!(out["stat"]["path"], "a/b/hello.txt");

    let out = b
        .ok(json!({"op": "stat", "root": "work", "path": "a/b"}))
        .await;
    assert_eq!(out["stat"]["kind"], "directory", "{out:#}");

    let out = b
        .ok(json!({"op": "list", "root": "work", "path": "", "depth": 5, "max_entries": 100}))
        .await;
    let paths: Vec<&str> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["a", "a/b", "a/b/hello.txt"], "{out:#}");
    assert_eq!(out["truncated"], false);

    let (is_error, out) = b.call(json!({"op": "roots"})).await;
    assert!(!is_error, "{out:#}");
    let names: Vec<&str> = out["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ro", "work"],
        "granted and defined roots only: {out:#}"
    );
    assert_eq!(out["roots"][0]["read_only"], true);
    assert_eq!(out["roots"][1]["read_only"], false);

    let events = b.fs_events(5).await;
    for target in ["work:a/b/hello.txt", "work:a/b", "work:"] {
        assert!(
            events
                .iter()
                .any(|e| e["target"] == target && e["decision"] == "allow"),
            "an allowed event on {target}: {events:#?}"
        );
    }
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_file_spills_to_an_artifact_and_writes_back_from_one() {
    let b = Bench::default().await;
    let big: String = (0..CAPTURE * 3)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    std::fs::write(b.work.join("big.txt"), &big).unwrap();

    // A huge max_inline is clamped to limits.capture_bytes: the file goes to an artifact.
    let out = b
        .ok(json!({"op": "read", "root": "work", "path": "big.txt", "max_inline": u64::MAX}))
        .await;
    assert!(out["data"].is_null(), "not inline: {out:#}");
    let uri = out["artifact"]["uri"]
        .as_str()
        .expect("an artifact")
        .to_string();
    assert_eq!(out["artifact"]["size"], big.len());
    assert_eq!(artifact_text(&b.home, &uri), big.as_bytes());

    // Written back from the artifact, atomically, over nothing.
    let out = b
        .ok(json!({"op": "write", "root": "work", "path": "copy/big.txt", "artifact": uri, "mkdirs": true}))
        .await;
    assert_eq!(out["stat"]["size"], big.len(), "{out:#}");
    assert_eq!(
        std::fs::read_to_string(b.work.join("copy/big.txt")).unwrap(),
        big
    );
    assert!(Bench::temp_files(&b.work.join("copy")).is_empty());

    // An existing file is refused without overwrite, replaced with it.
    let m = b
        .refused(
            json!({"op": "write", "root": "work", "path": "copy/big.txt", "content": "x"}),
            "invalid",
        )
        .await;
    assert!(
        m.starts_with("overwrite: ") && m.contains("overwrite: true"),
        "{m}"
    );
    assert_eq!(
        std::fs::read_to_string(b.work.join("copy/big.txt")).unwrap(),
        big
    );
    b.ok(json!({"op": "write", "root": "work", "path": "copy/big.txt", "content": "x", "overwrite": true}))
        .await;
    assert_eq!(
        std::fs::read_to_string(b.work.join("copy/big.txt")).unwrap(),
        "x"
    );
    assert!(Bench::temp_files(&b.work.join("copy")).is_empty());

    // Without mkdirs a missing directory is not created.
    let m = b
        .refused(
            json!({"op": "write", "root": "work", "path": "nope/x.txt", "content": "x"}),
            "not-found",
        )
        .await;
    assert!(m.contains("mkdirs: true"), "{m}");
    assert!(!b.work.join("nope").exists());

    // Over limits.artifact_bytes: refused, nothing stored.
    let before = b.artifact_count();
    std::fs::write(b.work.join("huge.bin"), vec![7u8; ARTIFACT_MAX + 1]).unwrap();
    let m = b
        .refused(
            json!({"op": "read", "root": "work", "path": "huge.bin", "max_inline": 0}),
            "failed",
        )
        .await;
    assert!(
        m.contains("artifact_bytes") && m.contains("nothing was stored"),
        "{m}"
    );
    assert_eq!(b.artifact_count(), before, "no artifact for a refused read");
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotdot_absolute_paths_and_symlinks_out_of_the_root_are_refused() {
    let b = Bench::default().await;
    symlink("/etc", b.work.join("etc-link")).unwrap();
    symlink(b.outside.join("secret.txt"), b.work.join("secret-link")).unwrap();
    symlink(&b.outside, b.work.join("out-dir")).unwrap();
    symlink("../outside/secret.txt", b.work.join("relative-out")).unwrap();

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"op": "read", "root": "work", "path": "../outside/secret.txt", "max_inline": 100}),
            "invalid",
        ),
        (
            json!({"op": "read", "root": "work", "path": "a/../../outside/secret.txt", "max_inline": 100}),
            "invalid",
        ),
        (
            json!({"op": "read", "root": "work", "path": "/etc/passwd", "max_inline": 100}),
            "invalid",
        ),
        (
            json!({"op": "read", "root": "work", "path": b.outside.join("secret.txt").to_string_lossy(), "max_inline": 100}),
            "invalid",
        ),
        (
            json!({"op": "read", "root": "work", "path": "etc-link/passwd", "max_inline": 100000}),
            "denied",
        ),
        (
            json!({"op": "read", "root": "work", "path": "secret-link", "max_inline": 100}),
            "denied",
        ),
        (
            json!({"op": "read", "root": "work", "path": "relative-out", "max_inline": 100}),
            "denied",
        ),
        (
            json!({"op": "list", "root": "work", "path": "etc-link"}),
            "denied",
        ),
        (
            json!({"op": "list", "root": "work", "path": "out-dir"}),
            "denied",
        ),
        (
            json!({"op": "stat", "root": "work", "path": "out-dir/secret.txt"}),
            "denied",
        ),
        (
            json!({"op": "write", "root": "work", "path": "out-dir/planted.txt", "content": "x"}),
            "denied",
        ),
        (
            json!({"op": "write", "root": "work", "path": "../outside/planted.txt", "content": "x"}),
            "invalid",
        ),
        (
            json!({"op": "mkdir", "root": "work", "path": "out-dir/newdir"}),
            "denied",
        ),
        (
            json!({"op": "remove", "root": "work", "path": "out-dir/secret.txt"}),
            "denied",
        ),
        (
            json!({"op": "remove", "root": "work", "path": "../outside/secret.txt"}),
            "invalid",
        ),
        (
            json!({"op": "remove", "root": "work", "path": ""}),
            "invalid",
        ),
        (
            json!({"op": "remove", "root": "work", "path": "a/.."}),
            "invalid",
        ),
    ];
    for (args, kind) in &cases {
        let m = b.refused(args.clone(), kind).await;
        assert!(!m.contains(CANARY) && !m.contains("root:x:0"), "{m}");
        if *kind == "invalid" {
            assert!(m.starts_with("path: "), "names the field: {m}");
        }
    }
    b.outside_untouched();

    // The symlinks themselves are listed and stat'ed as symlinks, never followed.
    let out = b
        .ok(json!({"op": "list", "root": "work", "path": ".", "depth": 3}))
        .await;
    let kinds: Vec<(&str, &str)> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("etc-link", "symlink"),
            ("out-dir", "symlink"),
            ("relative-out", "symlink"),
            ("secret-link", "symlink")
        ],
        "{out:#}"
    );
    let out = b
        .ok(json!({"op": "stat", "root": "work", "path": "etc-link"}))
        .await;
    assert_eq!(out["stat"]["kind"], "symlink");
    // Removing a symlink removes the link, not what it points to.
    b.ok(json!({"op": "remove", "root": "work", "path": "out-dir", "recursive": true}))
        .await;
    b.outside_untouched();

    let events = b.fs_events(cases.len() + 3).await;
    for (args, _) in &cases {
        let target = format!("work:{}", args["path"].as_str().unwrap());
        assert!(
            events.iter().any(|e| e["target"] == target
                && (e["decision"] == "deny" && e["reason"].is_string()
                    || e["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("the root itself")))),
            "the refusal on {target} in the audit record: {events:#?}"
        );
    }
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_ungranted_roots_refuse_and_each_refusal_is_audited() {
    let b = Bench::default().await;
    let out = b
        .ok(json!({"op": "read", "root": "ro", "path": "kept.txt", "max_inline": 100}))
        .await;
    assert_eq!(out["data"], "read-only content");
    let writes = [
        json!({"op": "write", "root": "ro", "path": "kept.txt", "content": "changed", "overwrite": true}),
        json!({"op": "write", "root": "ro", "path": "new.txt", "content": "x"}),
        json!({"op": "mkdir", "root": "ro", "path": "d"}),
        json!({"op": "remove", "root": "ro", "path": "kept.txt"}),
    ];
    for args in &writes {
        let m = b.refused(args.clone(), "denied").await;
        assert!(m.contains("read-only") && m.contains("[roots] ro"), "{m}");
    }
    assert_eq!(
        std::fs::read_to_string(b.ro.join("kept.txt")).unwrap(),
        "read-only content"
    );
    assert_eq!(
        std::fs::read_dir(&b.ro).unwrap().count(),
        1,
        "nothing created"
    );

    let m = b
        .refused(
            json!({"op": "read", "root": "other", "path": "x", "max_inline": 1}),
            "denied",
        )
        .await;
    assert!(
        m.contains("[plugin.fsprobe.fs] roots"),
        "names the grant to add: {m}"
    );
    let m = b
        .refused(
            json!({"op": "stat", "root": "ghost", "path": "x"}),
            "not-found",
        )
        .await;
    assert!(m.contains("[roots]"), "granted but not defined: {m}");
    let m = b
        .refused(json!({"op": "stat", "root": "", "path": "x"}), "invalid")
        .await;
    assert!(m.starts_with("root: "), "{m}");
    let m = b
        .refused(
            json!({"op": "read", "root": "/", "path": "/etc/passwd", "max_inline": 100}),
            "denied",
        )
        .await;
    assert!(
        m.contains("unsafe = true") && m.contains("INFRA_UNSAFE_LOCAL=1"),
        "names both locks: {m}"
    );

    let events = b.fs_events(writes.len() + 5).await;
    for target in [
        "ro:kept.txt",
        "ro:new.txt",
        "ro:d",
        "other:x",
        "/:/etc/passwd",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e["target"] == target && e["decision"] == "deny"),
            "a denial on {target}: {events:#?}"
        );
    }
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_filesystem_needs_the_unsafe_grant_and_the_flag_together() {
    let probe = |b: &Bench| json!({"op": "read", "root": "/", "path": b.outside.join("secret.txt").to_string_lossy(), "max_inline": 100});
    // The grant alone, without the flag.
    let b = Bench::start("roots = [\"work\"]\nunsafe = true", &[]).await;
    let m = b.refused(probe(&b), "denied").await;
    assert!(m.contains("INFRA_UNSAFE_LOCAL=1 is not set"), "{m}");
    let (_, out) = b.call(json!({"op": "roots"})).await;
    assert_eq!(
        out["roots"].as_array().unwrap().len(),
        1,
        "no '/' listed: {out:#}"
    );
    b.server.close().await;

    // The flag alone, without the grant.
    let b = Bench::start("roots = [\"work\"]", &[("INFRA_UNSAFE_LOCAL", "1")]).await;
    let m = b.refused(probe(&b), "denied").await;
    assert!(m.contains("no `unsafe = true`"), "{m}");
    b.server.close().await;

    // Both: absolute paths anywhere.
    let b = Bench::start(
        "roots = [\"work\"]\nunsafe = true\nread_only = false",
        &[("INFRA_UNSAFE_LOCAL", "1")],
    )
    .await;
    let out = b.ok(probe(&b)).await;
    assert_eq!(out["data"], CANARY);
    let (_, out) = b.call(json!({"op": "roots"})).await;
    assert!(
        out["roots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "/"),
        "'/' is listed: {out:#}"
    );
    let planted = b.outside.join("planted.txt");
    b.ok(json!({"op": "write", "root": "/", "path": planted.to_string_lossy(), "content": "ok"}))
        .await;
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "ok");
    let out = b
        .ok(json!({"op": "list", "root": "/", "path": b.outside.to_string_lossy()}))
        .await;
    let listed = out["entries"][0]["path"].as_str().unwrap();
    assert_eq!(listed, planted.to_string_lossy(), "absolute paths: {out:#}");
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_between_calls_does_not_lead_out() {
    let b = Bench::default().await;
    std::fs::create_dir(b.work.join("d")).unwrap();
    std::fs::write(b.work.join("d/secret.txt"), "inside").unwrap();
    let out = b
        .ok(json!({"op": "stat", "root": "work", "path": "d/secret.txt"}))
        .await;
    assert_eq!(out["stat"]["kind"], "file");
    let out = b
        .ok(json!({"op": "read", "root": "work", "path": "d/secret.txt", "max_inline": 100}))
        .await;
    assert_eq!(out["data"], "inside");

    // Between two calls the directory becomes a symlink to a directory outside the root that
    // holds a file of the very same name.
    std::fs::remove_dir_all(b.work.join("d")).unwrap();
    symlink(&b.outside, b.work.join("d")).unwrap();
    let m = b
        .refused(
            json!({"op": "read", "root": "work", "path": "d/secret.txt", "max_inline": 100}),
            "denied",
        )
        .await;
    assert!(m.contains("outside its root") && !m.contains(CANARY), "{m}");
    b.refused(
        json!({"op": "stat", "root": "work", "path": "d/secret.txt"}),
        "denied",
    )
    .await;
    b.refused(
        json!({"op": "write", "root": "work", "path": "d/secret.txt", "content": "owned", "overwrite": true}),
        "denied",
    )
    .await;
    b.refused(
        json!({"op": "remove", "root": "work", "path": "d/secret.txt"}),
        "denied",
    )
    .await;
    b.outside_untouched();

    // A symlink loop is refused, not followed forever.
    symlink("loop-b", b.work.join("loop-a")).unwrap();
    symlink("loop-a", b.work.join("loop-b")).unwrap();
    let m = b
        .refused(
            json!({"op": "read", "root": "work", "path": "loop-a", "max_inline": 100}),
            "invalid",
        )
        .await;
    assert!(m.starts_with("path: ") && m.contains("loop"), "{m}");
    let m = b
        .refused(
            json!({"op": "list", "root": "work", "path": "loop-a/x"}),
            "invalid",
        )
        .await;
    assert!(m.starts_with("path: "), "{m}");
    // Listed as the symlinks they are.
    let out = b
        .ok(json!({"op": "list", "root": "work", "path": "", "depth": 10}))
        .await;
    assert_eq!(out["entries"].as_array().unwrap().len(), 3, "{out:#}");

    let events = b.fs_events(9).await;
    let denied = events
        .iter()
        .filter(|e| e["target"] == "work:d/secret.txt" && e["decision"] == "deny")
        .count();
    assert_eq!(denied, 4, "each refusal audited: {events:#?}");
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_bounded_and_mkdir_and_remove_work_as_asked() {
    let b = Bench::default().await;
    b.ok(json!({"op": "mkdir", "root": "work", "path": "t/u/v"}))
        .await;
    assert!(b.work.join("t/u/v").is_dir());
    for i in 0..30 {
        std::fs::write(b.work.join(format!("t/u/v/f{i:02}")), "x").unwrap();
    }
    std::fs::write(b.work.join("t/top.txt"), "x").unwrap();

    let out = b
        .ok(json!({"op": "list", "root": "work", "path": "t", "depth": 0}))
        .await;
    let paths: Vec<&str> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["t/top.txt", "t/u"],
        "depth 0: the directory only: {out:#}"
    );
    let out = b
        .ok(json!({"op": "list", "root": "work", "path": "t", "depth": 1}))
        .await;
    assert_eq!(out["entries"].as_array().unwrap().len(), 3, "{out:#}");
    let out = b
        .ok(json!({"op": "list", "root": "work", "path": "t", "depth": 9, "max_entries": 10}))
        .await;
    assert_eq!(out["entries"].as_array().unwrap().len(), 10, "{out:#}");
    assert_eq!(out["truncated"], true);
    let out = b
        .ok(json!({"op": "list", "root": "work", "path": "t", "depth": 9, "max_entries": u32::MAX}))
        .await;
    assert_eq!(out["entries"].as_array().unwrap().len(), 33);
    assert_eq!(out["truncated"], false);

    let m = b
        .refused(
            json!({"op": "remove", "root": "work", "path": "t/u"}),
            "invalid",
        )
        .await;
    assert!(m.starts_with("recursive: "), "{m}");
    assert!(b.work.join("t/u/v/f00").exists());
    b.ok(json!({"op": "remove", "root": "work", "path": "t/top.txt"}))
        .await;
    b.ok(json!({"op": "remove", "root": "work", "path": "t/u", "recursive": true}))
        .await;
    assert!(!b.work.join("t/u").exists());
    b.ok(json!({"op": "remove", "root": "work", "path": "t"}))
        .await;
    assert_eq!(std::fs::read_dir(&b.work).unwrap().count(), 0);
    let m = b
        .refused(
            json!({"op": "mkdir", "root": "work", "path": "x/../.."}),
            "invalid",
        )
        .await;
    assert!(m.starts_with("path: "), "{m}");
    b.refused(
        json!({"op": "remove", "root": "work", "path": "gone"}),
        "not-found",
    )
    .await;
    let m = b
        .refused(
            json!({"op": "write", "root": "work", "path": "f", "content": "x", "mode": 0o4755}),
            "invalid",
        )
        .await;
    assert!(m.starts_with("mode: "), "{m}");
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_secrets_are_scrubbed_from_reads_inline_and_spilled() {
    let b = Bench::default().await;
    let text = format!("token={}\n", b.secret);
    std::fs::write(b.work.join("leak.txt"), &text).unwrap();
    let out = b
        .ok(json!({"op": "read", "root": "work", "path": "leak.txt", "max_inline": 4096}))
        .await;
    let data = out["data"].as_str().unwrap();
    assert!(
        data.starts_with("token=") && !data.contains(&b.secret),
        "{out:#}"
    );

    let long = text.repeat(CAPTURE / text.len() + 2);
    std::fs::write(b.work.join("leak-long.txt"), &long).unwrap();
    let out = b
        .ok(json!({"op": "read", "root": "work", "path": "leak-long.txt", "max_inline": 16}))
        .await;
    let uri = out["artifact"]["uri"].as_str().expect("spilled");
    let stored = artifact_text(&b.home, uri);
    assert!(!String::from_utf8_lossy(&stored).contains(&b.secret));
    assert!(stored.starts_with(b"token="));
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_unsafe_root_absolute_symlinks_resolve() {
    let b = Bench::start(
        "roots = [\"work\"]\nunsafe = true",
        &[("INFRA_UNSAFE_LOCAL", "1")],
    )
    .await;
    let link = b.work.join("abs-link");
    symlink(b.outside.join("secret.txt"), &link).unwrap();
    let out = b
        .ok(json!({"op": "read", "root": "/", "path": link.to_string_lossy(), "max_inline": 100}))
        .await;
    assert_eq!(out["data"], CANARY);
    let out = b
        .ok(json!({"op": "stat", "root": "/", "path": link.to_string_lossy()}))
        .await;
    assert_eq!(
        out["stat"]["kind"], "symlink",
        "stat does not follow: {out:#}"
    );
    // The grant is read-only (the default): '/' refuses writes too.
    let m = b
        .refused(json!({"op": "write", "root": "/", "path": b.work.join("x").to_string_lossy(), "content": "x"}), "denied")
        .await;
    assert!(m.contains("read_only = false"), "{m}");
    // Still only the two named: the sandbox's roots grant does not matter for '/'.
    b.refused(
        json!({"op": "stat", "root": "other", "path": "x"}),
        "denied",
    )
    .await;
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_other_roots_and_odd_root_names_cannot_be_used_to_get_around_a_grant() {
    let b = Bench::default().await;
    // A FIFO under the root: opening it for reading would block forever without a writer.
    let fifo = b.work.join("pipe");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a plain syscall on a NUL-terminated path this function owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let m = b
        .refused(
            json!({"op": "read", "root": "work", "path": "pipe", "max_inline": 10}),
            "invalid",
        )
        .await;
    assert!(m.contains("not a regular file"), "{m}");
    let out = b
        .ok(json!({"op": "stat", "root": "work", "path": "pipe"}))
        .await;
    assert_eq!(out["stat"]["kind"], "other");

    // A relative symlink from the writable root into the read-only one does not make it writable.
    symlink("../ro", b.work.join("to-ro")).unwrap();
    b.refused(
        json!({"op": "write", "root": "work", "path": "to-ro/kept.txt", "content": "changed", "overwrite": true}),
        "denied",
    )
    .await;
    b.refused(
        json!({"op": "remove", "root": "work", "path": "to-ro/kept.txt"}),
        "denied",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(b.ro.join("kept.txt")).unwrap(),
        "read-only content"
    );

    // Root names are names: a path in one is no root.
    for root in ["../work", "work/..", "work/", "./work", "*", "ro/../work"] {
        b.refused(json!({"op": "stat", "root": root, "path": "x"}), "denied")
            .await;
    }
    b.outside_untouched();
    b.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_artifacts_grant_a_long_file_is_refused_not_cut() {
    let b = Bench::start_with("roots = [\"work\"]", &[], "").await;
    std::fs::write(b.work.join("long.txt"), "y".repeat(CAPTURE * 2)).unwrap();
    let m = b
        .refused(
            json!({"op": "read", "root": "work", "path": "long.txt", "max_inline": 10}),
            "denied",
        )
        .await;
    assert!(m.contains("artifacts") && m.contains("max_inline"), "{m}");
    assert_eq!(b.artifact_count(), 0);
    // Short enough to come back inline: no artifacts grant needed.
    std::fs::write(b.work.join("short.txt"), "ok").unwrap();
    let out = b
        .ok(json!({"op": "read", "root": "work", "path": "short.txt", "max_inline": 10}))
        .await;
    assert_eq!(out["data"], "ok");
    let events = b.fs_events(2).await;
    assert!(
        events
            .iter()
            .any(|e| e["target"] == "work:long.txt" && e["decision"] == "deny"),
        "{events:#?}"
    );
    b.server.close().await;
}
