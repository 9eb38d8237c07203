//! The repo plugin through the real binary over MCP, on real repositories made by the test:
//! git and kubectl run by the host's exec capability, pushes by its git capability to a
//! `file://` remote and over a real sshd.

use std::path::{Path, PathBuf};

use infra_tests::git::{self, commit_all, git, head, init, init_bare, write};
use infra_tests::sshd::Sshd;
use infra_tests::{Home, Mcp, canary, contains, text, with_fields};
use serde_json::{Value, json};

/// A writable root `work` and a read-only root `ro`, and a state directory whose policy grants
/// the repo plugin both, `git` and `kubectl`, identities, and pushes to `remotes`.
struct Fixture {
    work: tempfile::TempDir,
    ro: tempfile::TempDir,
    home: Home,
}

fn policy(work: &Path, ro: &Path, remotes: &[String], extra: &str) -> String {
    format!(
        r#"[roots]
work = {{ path = "{work}", read_only = false }}
ro = {{ path = "{ro}", read_only = true }}

[programs]
git = "/usr/bin/git"
kubectl = "/usr/bin/kubectl"

[plugin.repo.fs]
roots = ["work", "ro"]
read_only = false

[plugin.repo.exec]
programs = ["git", "kubectl"]
roots = ["work", "ro"]
env = ["GIT_AUTHOR_*", "GIT_COMMITTER_*"]
read_only = false

[plugin.repo.git]
remotes = {remotes:?}
profiles = ["forge"]

[plugin.repo.artifacts]
[plugin.repo.log]
{extra}"#,
        work = work.display(),
        ro = ro.display(),
    )
}

impl Fixture {
    fn new() -> Self {
        Self::with(&[], "")
    }

    fn with(remotes: &[String], extra: &str) -> Self {
        let work = tempfile::tempdir().unwrap();
        let ro = tempfile::tempdir().unwrap();
        let home = Home::new();
        home.policy(&policy(work.path(), ro.path(), remotes, extra));
        Self { work, ro, home }
    }

    fn dir(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }
}

/// One `repo` call on `path` under root `work`.
async fn repo(mcp: &Mcp, path: &str, action: &str, extra: Value) -> (bool, Value) {
    mcp.call(
        "repo",
        with_fields(
            json!({"action": action, "root": "work", "path": path}),
            extra,
        ),
    )
    .await
}

/// A repository with a merge, a rename, a binary file and pending changes of every kind.
fn busy_repo(dir: &Path) {
    init(dir);
    write(dir, "a.txt", "one\ntwo\nthree\n");
    write(dir, "old name.txt", "to be renamed\n".repeat(20));
    write(dir, "img.bin", [0u8, 1, 2, 3, 255, 0, 7]);
    write(dir, "odd\tname\nwith newline.txt", "x\n");
    commit_all(dir, "first");
    git(dir, &["switch", "-q", "-c", "feature"]);
    write(dir, "feature.txt", "feature\n");
    commit_all(dir, "feature work");
    git(dir, &["switch", "-q", "main"]);
    write(dir, "a.txt", "one\ntwo\nthree\nfour\n");
    commit_all(dir, "main work");
    git(
        dir,
        &["merge", "-q", "--no-ff", "-m", "Merge feature", "feature"],
    );
    git(dir, &["mv", "old name.txt", "new name.txt"]);
    write(dir, "img.bin", [9u8, 0, 0, 1]);
    write(dir, "a.txt", "ONE\ntwo\nthree\nfour\n");
    write(dir, "odd\tname\nwith newline.txt", "y\n");
    write(dir, "untracked file.txt", "new\n");
}

#[tokio::test]
async fn snapshot_status_log_and_show_read_merges_renames_binary_files_and_odd_states() {
    let f = Fixture::new();
    let dir = f.dir("busy");
    busy_repo(&dir);
    let mcp = f.home.mcp().await;

    let (err, out) = repo(&mcp, "busy", "snapshot", json!({})).await;
    assert!(!err, "{out}");
    assert_eq!(out["status"]["branch"], "main");
    assert_eq!(out["status"]["head"], head(&dir).as_str());
    assert_eq!(out["status"]["counts"]["untracked"], 1, "{out}");
    let entries = out["status"]["entries"].as_array().unwrap();
    let renamed = entries
        .iter()
        .find(|e| e["kind"] == "renamed")
        .expect("a rename");
    assert_eq!(renamed["from"], "old name.txt");
    assert_eq!(renamed["path"], "new name.txt");
    assert!(
        entries
            .iter()
            .any(|e| e["path"] == "odd\tname\nwith newline.txt"),
        "a name with a tab and a newline comes back whole: {out}"
    );
    let files = out["diffstat"]["files"].as_array().unwrap();
    let bin = files
        .iter()
        .find(|f| f["path"] == "img.bin")
        .expect("img.bin");
    assert_eq!(bin["binary"], true, "{bin}");
    let commits = out["commits"].as_array().unwrap();
    assert_eq!(commits[0]["subject"], "Merge feature");
    assert_eq!(commits[0]["parents"].as_array().unwrap().len(), 2);
    assert_eq!((text(&out, "/root"), text(&out, "/path")), ("work", "busy"));

    let (_, out) = repo(
        &mcp,
        "busy",
        "log",
        json!({"max_count": 2, "paths": ["feature.txt"]}),
    )
    .await;
    assert_eq!(out["commits"][0]["subject"], "feature work", "{out}");
    let (_, out) = repo(&mcp, "busy", "show", json!({"rev": "HEAD"})).await;
    assert_eq!(out["commit"]["subject"], "Merge feature");
    assert_eq!(out["diffstat"]["files"][0]["path"], "feature.txt", "{out}");
    let (err, out) = repo(&mcp, "busy", "revert", json!({"rev": "HEAD"})).await;
    assert!(err, "a merge needs `mainline`: {out}");
    assert_eq!(out["error"]["field"], "mainline", "{out}");
    let (_, out) = repo(
        &mcp,
        "busy",
        "diff",
        json!({"format": "patch", "paths": ["a.txt"]}),
    )
    .await;
    assert!(text(&out, "/patch/text").contains("-one\n+ONE"), "{out}");

    // Detached HEAD; a merge conflict; an empty repository.
    git(&dir, &["stash", "-u", "-q"]);
    git(&dir, &["switch", "-q", "--detach", "HEAD~2"]);
    let (_, out) = repo(&mcp, "busy", "status", json!({})).await;
    assert_eq!(out["status"]["detached"], true, "{out}");
    assert!(out["status"].get("branch").is_none_or(Value::is_null));
    git(&dir, &["switch", "-q", "-c", "clash"]);
    write(&dir, "a.txt", "clash\n");
    commit_all(&dir, "clash");
    assert!(!git::git_status(&dir, &["merge", "main"]), "a conflict");
    let (_, out) = repo(&mcp, "busy", "status", json!({})).await;
    assert_eq!(out["status"]["counts"]["conflicted"], 1, "{out}");
    let (err, out) = repo(&mcp, "busy", "assert_clean", json!({})).await;
    assert!(err, "{out}");
    assert!(
        text(&out, "/error/message").contains("1 conflicted"),
        "{out}"
    );

    init(&f.dir("empty"));
    let (err, out) = repo(&mcp, "empty", "snapshot", json!({})).await;
    assert!(!err, "{out}");
    assert_eq!(out["status"]["branch"], "main");
    assert!(out["status"].get("head").is_none_or(Value::is_null));
    assert_eq!(out["commits"], json!([]));
    mcp.close().await;
}

#[tokio::test]
async fn a_fifty_megabyte_diff_spills_to_an_artifact_and_bad_fields_are_named() {
    let f = Fixture::new();
    let dir = init(&f.dir("big"));
    commit_all(&dir, "empty start");
    let line = "x".repeat(99) + "\n";
    write(&dir, "huge.txt", line.repeat(500_000));
    git(&dir, &["add", "huge.txt"]);
    let mcp = f.home.mcp().await;
    let (err, out) = repo(
        &mcp,
        "big",
        "diff",
        json!({"staged": true, "format": "patch", "max_output": 10000}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["patch"]["truncated"], true);
    assert!(text(&out, "/patch/text").len() <= 10000);
    let size = out["patch"]["artifact"]["size"].as_u64().unwrap();
    assert!(size > 50_000_000, "the whole patch is stored: {size}");
    let (_, out) = repo(&mcp, "big", "diff", json!({"staged": true})).await;
    assert_eq!(out["diffstat"]["insertions"], 500_000, "{out}");

    for (args, field) in [
        (
            json!({"action": "status", "root": "work", "path": "../x"}),
            "path",
        ),
        (
            json!({"action": "status", "root": "work", "path": "/etc"}),
            "path",
        ),
        (
            json!({"action": "log", "root": "work", "path": "big", "rev": "--output=/tmp/x"}),
            "rev",
        ),
        (
            json!({"action": "diff", "root": "work", "path": "big", "to": "HEAD"}),
            "from",
        ),
        (
            json!({"action": "diff", "root": "work", "path": "big", "paths": ["../../etc"]}),
            "paths",
        ),
    ] {
        let (err, out) = mcp.call("repo", args.clone()).await;
        assert!(err, "{args}: {out}");
        assert_eq!(out["error"]["field"], field, "{args}: {out}");
    }
    let (err, out) = repo(&mcp, ".", "status", json!({})).await;
    assert!(err, "the root itself is no repository: {out}");
    assert!(
        text(&out, "/error/message").contains("git repository"),
        "{out}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn apply_patch_checks_then_applies_and_reports_conflicting_hunks() {
    let f = Fixture::new();
    let dir = init(&f.dir("p"));
    let lines: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    write(&dir, "f.txt", &lines);
    commit_all(&dir, "base");
    write(
        &dir,
        "f.txt",
        lines
            .replace("line 2\n", "line two\n")
            .replace("line 28\n", "line 28!\n"),
    );
    let patch = git(&dir, &["diff"]);
    git(&dir, &["checkout", "-q", "f.txt"]);
    let mcp = f.home.mcp().await;

    let (err, out) = repo(&mcp, "p", "apply_patch", json!({"patch": patch})).await;
    assert!(!err, "{out}");
    assert_eq!(out["applied"], false);
    assert_eq!(out["patch_check"]["ok"], true, "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.join("f.txt")).unwrap(),
        lines,
        "check only"
    );

    // The second hunk no longer matches.
    write(&dir, "f.txt", lines.replace("line 28\n", "changed\n"));
    let (_, out) = repo(
        &mcp,
        "p",
        "apply_patch",
        json!({"patch": patch, "apply": true}),
    )
    .await;
    assert_eq!(out["applied"], false, "{out}");
    let file = &out["patch_check"]["files"][0];
    assert_eq!(file["path"], "f.txt");
    assert_eq!(file["ok"], false);
    assert_eq!(file["failed_hunks"][0]["line"], 25, "{out}");
    assert!(text(file, "/failed_hunks/0/expected").contains("line 28"));

    git(&dir, &["checkout", "-q", "f.txt"]);
    let (_, out) = repo(
        &mcp,
        "p",
        "apply_patch",
        json!({"patch": patch, "apply": true}),
    )
    .await;
    assert_eq!(out["applied"], true, "{out}");
    assert!(
        std::fs::read_to_string(dir.join("f.txt"))
            .unwrap()
            .contains("line two")
    );
    let (err, out) = repo(&mcp, "p", "apply_patch", json!({"patch": "garbage"})).await;
    assert!(!err);
    assert_eq!(out["patch_check"]["ok"], false, "{out}");

    // A patch the plugin itself spilled to an artifact applies from there.
    let (_, out) = repo(
        &mcp,
        "p",
        "diff",
        json!({"format": "patch", "max_output": 16}),
    )
    .await;
    let uri = text(&out, "/patch/artifact/uri").to_string();
    git(&dir, &["checkout", "-q", "f.txt"]);
    let (_, out) = repo(
        &mcp,
        "p",
        "apply_patch",
        json!({"patch_artifact": uri, "apply": true}),
    )
    .await;
    assert_eq!(out["applied"], true, "{out}");
    assert!(
        std::fs::read_to_string(dir.join("f.txt"))
            .unwrap()
            .contains("line 28!")
    );
    mcp.close().await;
}

#[tokio::test]
async fn commit_revert_and_branch_plan_without_apply_and_act_with_it() {
    let f = Fixture::new();
    let dir = init(&f.dir("c"));
    write(&dir, "a.txt", "a\n");
    commit_all(&dir, "base");
    write(&dir, "a.txt", "b\n");
    write(&dir, "new.txt", "n\n");
    let before = head(&dir);
    let mcp = f.home.mcp().await;
    let author = json!({"name": "Ada Agent", "email": "ada@example.invalid"});

    let (err, out) = repo(
        &mcp,
        "c",
        "commit",
        json!({"message": "change a", "all": true, "author": author}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["applied"], false);
    assert_eq!(head(&dir), before, "nothing committed without apply");

    let (err, out) = repo(
        &mcp,
        "c",
        "commit",
        json!({"message": "change a", "paths": ["a.txt"], "author": author, "apply": true}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["commit"]["author"], "Ada Agent");
    assert_eq!(out["commit"]["committer_email"], "ada@example.invalid");
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%an <%ae>"]).trim(),
        "Ada Agent <ada@example.invalid>"
    );
    assert!(
        git(&dir, &["status", "--porcelain"]).contains("?? new.txt"),
        "only a.txt committed"
    );

    let (_, out) = repo(
        &mcp,
        "c",
        "revert",
        json!({"rev": "HEAD", "author": author}),
    )
    .await;
    assert_eq!(out["applied"], false, "{out}");
    let (err, out) = repo(
        &mcp,
        "c",
        "revert",
        json!({"sha": "HEAD", "author": author, "apply": true}),
    )
    .await;
    assert!(!err, "{out}");
    assert!(text(&out, "/commit/subject").starts_with("Revert"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "a\n");

    // Reverting an older change that later work built on conflicts: aborted and reported.
    let older = git(&dir, &["rev-parse", "HEAD~1"]).trim().to_string();
    write(&dir, "a.txt", "c\n");
    commit_all(&dir, "a to c");
    let (err, out) = repo(
        &mcp,
        "c",
        "revert",
        json!({"rev": older, "author": author, "apply": true}),
    )
    .await;
    assert!(err, "{out}");
    assert!(text(&out, "/error/message").contains("aborted"), "{out}");
    assert_eq!(
        out["error"]["detail"]["conflicted"],
        json!(["a.txt"]),
        "{out}"
    );
    assert!(git(&dir, &["status", "--porcelain", "--untracked-files=no"]).is_empty());

    let (_, out) = repo(
        &mcp,
        "c",
        "branch",
        json!({"name": "topic", "create": true}),
    )
    .await;
    assert_eq!(out["applied"], false);
    let (err, out) = repo(
        &mcp,
        "c",
        "branch",
        json!({"name": "topic", "create": true, "apply": true}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["branch"], "topic");
    let (err, out) = repo(
        &mcp,
        "c",
        "branch",
        json!({"name": "-x", "create": true, "apply": true}),
    )
    .await;
    assert!(err);
    assert_eq!(out["error"]["field"], "name", "{out}");

    // A read-only root refuses the write (git cannot lock the index there).
    let ro = init(&f.ro.path().join("r"));
    write(&ro, "x", "x");
    let (err, out) = mcp
        .call(
            "repo",
            json!({"action": "commit", "root": "ro", "path": "r", "message": "m",
            "all": true, "author": author, "apply": true}),
        )
        .await;
    assert!(err, "{out}");
    assert!(
        !git::git_status(&ro, &["rev-parse", "--verify", "-q", "HEAD"]),
        "nothing committed under the read-only root"
    );
    mcp.close().await;
}

#[tokio::test]
async fn push_goes_to_granted_file_and_ssh_remotes_only_and_never_shows_the_key() {
    let sshd = Sshd::start();
    let f0 = tempfile::tempdir().unwrap();
    let bare_ssh = init_bare(&f0.path().join("ssh-remote.git"));
    let ssh_url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        bare_ssh.display()
    );
    let work = tempfile::tempdir().unwrap();
    let file_url = format!("file://{}", work.path().join("remote.git").display());
    let f = Fixture {
        home: Home::new(),
        ro: tempfile::tempdir().unwrap(),
        work,
    };
    f.home.policy(&policy(
        f.work.path(),
        f.ro.path(),
        &[file_url.clone(), ssh_url.clone()],
        "",
    ));
    let kh = f0.path().join("known_hosts");
    std::fs::write(
        &kh,
        git::known_hosts(&sshd.dir().join("host_ed25519.pub"), sshd.port),
    )
    .unwrap();
    f.home.profiles(&json!({"forge": {"type": "ssh-key",
        "key": format!("file:{}", sshd.key.display()), "known_hosts": format!("file:{}", kh.display())}}));

    init_bare(&f.dir("remote.git"));
    let dir = init(&f.dir("w"));
    write(&dir, "a", "a");
    let sha = commit_all(&dir, "first");
    git(&dir, &["remote", "add", "origin", &file_url]);
    git(&dir, &["remote", "add", "forge", &ssh_url]);
    git(
        &dir,
        &[
            "remote",
            "add",
            "elsewhere",
            &format!("file://{}", f0.path().join("x.git").display()),
        ],
    );
    let mcp = f.home.mcp().await;

    let (err, out) = repo(&mcp, "w", "push", json!({"refspecs": ["main:main"]})).await;
    assert!(!err, "{out}");
    assert_eq!(out["applied"], false);
    assert_eq!(out["push"]["url"], file_url.as_str());
    let (err, out) = repo(
        &mcp,
        "w",
        "push",
        json!({"refspecs": ["main:main"], "apply": true}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(
        git(&f.dir("remote.git"), &["rev-parse", "main"]).trim(),
        sha
    );

    let (err, out) = repo(
        &mcp,
        "w",
        "push",
        json!({"remote": "forge", "refspecs": ["main:main"], "profile": "forge", "apply": true}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(git(&bare_ssh, &["rev-parse", "main"]).trim(), sha);

    let (err, out) = repo(
        &mcp,
        "w",
        "push",
        json!({"remote": "elsewhere", "refspecs": ["main:main"], "apply": true}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    let (err, out) = repo(
        &mcp,
        "w",
        "push",
        json!({"refspecs": ["+main:main"], "apply": true}),
    )
    .await;
    assert!(err, "a force push without the grant: {out}");

    let key = std::fs::read_to_string(&sshd.key).unwrap();
    let key_body: String = key.lines().nth(2).unwrap().to_string();
    let stderr = mcp.close().await;
    assert!(!stderr.contains(&key_body));
    assert!(
        !contains(&f.home.all_bytes(), &key_body),
        "the key is nowhere in the state directory"
    );
}

/// Config, hooks and attributes that make git run a command writing `markers/<name>`.
fn make_hostile(dir: &Path, markers: &Path, remote: &str) {
    init(dir);
    write(dir, "a.txt", "one\n");
    commit_all(dir, "base");
    git(dir, &["remote", "add", "origin", remote]);
    std::fs::create_dir_all(markers).unwrap();
    let m = |name: &str| format!("touch {}/{name}", markers.display());
    let hooks = dir.join(".git/hooks");
    for hook in [
        "pre-commit",
        "commit-msg",
        "post-commit",
        "post-checkout",
        "pre-push",
        "reference-transaction",
        "post-index-change",
        "pre-applypatch",
        "post-rewrite",
    ] {
        write(&hooks, hook, format!("#!/bin/sh\n{}\n", m(hook)));
        let exe = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(hooks.join(hook), exe).unwrap();
    }
    let evil_include = dir.join("evil.config");
    std::fs::write(
        &evil_include,
        format!(
            "[core]\n\tfsmonitor = \"{}; echo\"\n",
            m("include-fsmonitor")
        ),
    )
    .unwrap();
    for (k, v) in [
        ("core.fsmonitor", format!("{}; echo", m("fsmonitor"))),
        ("core.pager", format!("{}; cat", m("pager"))),
        ("pager.log", format!("{}; cat", m("pager-log"))),
        ("diff.external", m("diff-external")),
        ("diff.evil.textconv", format!("{}; cat", m("textconv"))),
        ("filter.evil.clean", format!("{}; cat", m("filter-clean"))),
        ("filter.evil.smudge", format!("{}; cat", m("filter-smudge"))),
        ("filter.evil.required", "true".into()),
        ("alias.st", format!("!{}", m("alias"))),
        ("core.sshCommand", m("ssh-command")),
        ("core.editor", m("editor")),
        ("sequence.editor", m("sequence-editor")),
        (
            "credential.helper",
            format!("!{}; echo password=leaked", m("credential")),
        ),
        ("gpg.program", m("gpg")),
        ("commit.gpgSign", "true".into()),
        (
            "remote.origin.receivepack",
            format!("{}; git-receive-pack", m("receivepack")),
        ),
        (
            "remote.origin.uploadpack",
            format!("{}; git-upload-pack", m("uploadpack")),
        ),
        (
            "includeIf.gitdir:/.path",
            evil_include.display().to_string(),
        ),
    ] {
        git(dir, &["config", k, &v]);
    }
    write(dir, ".gitattributes", "*.txt diff=evil filter=evil\n");
    write(dir, "a.txt", "one\ntwo\n");
}

fn markers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn a_hostile_repository_runs_nothing_whatever_the_action() {
    // The control: plain git on the same tricks runs them.
    let control = tempfile::tempdir().unwrap();
    let cm = control.path().join("markers");
    init_bare(&control.path().join("remote.git"));
    let remote = format!("file://{}", control.path().join("remote.git").display());
    make_hostile(&control.path().join("r"), &cm, &remote);
    let r = control.path().join("r");
    git(&r, &["status"]);
    git(&r, &["diff"]);
    git(
        &r,
        &["commit", "-q", "--no-gpg-sign", "-a", "-m", "control"],
    );
    let _ = git::git_status(&r, &["push", "origin", "main"]);
    let ran = markers(&cm);
    // The included config's fsmonitor wins over the repository's own: includeIf is live.
    for m in [
        "include-fsmonitor",
        "diff-external",
        "filter-clean",
        "pre-commit",
        "post-commit",
        "receivepack",
    ] {
        assert!(ran.iter().any(|r| r == m), "the control ran {m}: {ran:?}");
    }

    let work = tempfile::tempdir().unwrap();
    let remote = format!("file://{}", work.path().join("remote.git").display());
    let f = Fixture {
        home: Home::new(),
        ro: tempfile::tempdir().unwrap(),
        work,
    };
    f.home.policy(&policy(
        f.work.path(),
        f.ro.path(),
        std::slice::from_ref(&remote),
        "",
    ));
    init_bare(&f.dir("remote.git"));
    let marks = f.dir("markers");
    let dir = f.dir("h");
    make_hostile(&dir, &marks, &remote);
    let patch = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+three\n";
    let author = json!({"name": "A", "email": "a@x.invalid"});
    let mcp = f.home.mcp().await;
    for (action, extra) in [
        ("snapshot", json!({})),
        ("status", json!({})),
        ("diff", json!({})),
        ("diff", json!({"format": "patch"})),
        ("diff", json!({"from": "HEAD", "format": "patch"})),
        ("log", json!({})),
        ("show", json!({"format": "patch"})),
        ("assert_clean", json!({})),
        ("apply_patch", json!({"patch": patch})),
        ("apply_patch", json!({"patch": patch, "apply": true})),
        (
            "commit",
            json!({"message": "m", "all": true, "author": author, "apply": true}),
        ),
        (
            "branch",
            json!({"name": "b2", "create": true, "apply": true}),
        ),
        ("branch", json!({"name": "main", "apply": true})),
        (
            "revert",
            json!({"rev": "HEAD", "author": author, "apply": true}),
        ),
        ("push", json!({"refspecs": ["main:main"], "apply": true})),
    ] {
        let (err, out) = repo(&mcp, "h", action, extra.clone()).await;
        // Every action but `assert_clean` (the work tree is dirty) ran git to its end.
        assert!(
            !err || action == "assert_clean",
            "{action} {extra} failed: {out}"
        );
        assert_eq!(
            markers(&marks),
            Vec::<String>::new(),
            "{action} {extra} ran a repository command: {out}"
        );
    }
    mcp.close().await;
}

#[tokio::test]
async fn render_runs_kubectl_kustomize_and_summarises_the_objects() {
    let f = Fixture::new();
    let dir = init(&f.dir("k"));
    write(
        &dir,
        "base/kustomization.yaml",
        "resources:\n- deploy.yaml\n",
    );
    write(
        &dir,
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    write(
        &dir,
        "overlays/prod/kustomization.yaml",
        "namespace: prod\nresources:\n- ../../base\n- ns.yaml\nimages:\n- name: nginx\n  newTag: \"1.28\"\n",
    );
    write(
        &dir,
        "overlays/prod/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n",
    );
    commit_all(&dir, "manifests");
    let mcp = f.home.mcp().await;
    let (err, out) = repo(&mcp, "k", "render", json!({"overlay": "overlays/prod"})).await;
    assert!(!err, "{out}");
    let r = &out["render"];
    assert_eq!(r["count"], 2, "{out}");
    let dep = r["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    assert_eq!(dep["namespace"], "prod");
    assert_eq!(dep["images"], json!(["nginx:1.28"]));
    assert_eq!(r["images"], json!(["nginx:1.28"]));
    assert!(text(r, "/manifests/uri").starts_with("artifact://"));
    let (err, out) = repo(&mcp, "k", "render", json!({"dir": "nowhere"})).await;
    assert!(err, "{out}");
    let (err, out) = repo(
        &mcp,
        "k",
        "render",
        json!({"renderer": "helm", "dir": "base"}),
    )
    .await;
    assert!(err, "helm is not granted: {out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn secret_canaries_in_git_credential_slots_never_surface() {
    let password = canary("git-url-password");
    let helper = canary("git-credential-helper");
    let work = tempfile::tempdir().unwrap();
    let f = Fixture {
        home: Home::new(),
        ro: tempfile::tempdir().unwrap(),
        work,
    };
    let granted = "https://*forge.invalid/acme/*".to_string();
    f.home.policy(&policy(
        f.work.path(),
        f.ro.path(),
        std::slice::from_ref(&granted),
        "",
    ));
    let dir = init(&f.dir("s"));
    write(&dir, "a", "a");
    commit_all(&dir, "first");
    let url = format!("https://agent:{password}@forge.invalid/acme/app.git");
    git(&dir, &["remote", "add", "origin", &url]);
    git(
        &dir,
        &[
            "config",
            "credential.helper",
            &format!("!echo password={helper}"),
        ],
    );
    let mcp = f.home.mcp().await;
    for extra in [json!({}), json!({"apply": true})] {
        let (_, out) = repo(
            &mcp,
            "s",
            "push",
            with_fields(json!({"refspecs": ["main:main"]}), extra),
        )
        .await;
        let shown = out.to_string();
        assert!(
            !shown.contains(&password) && !shown.contains(&helper),
            "{shown}"
        );
    }
    let (_, out) = repo(&mcp, "s", "push", json!({})).await;
    assert!(text(&out, "/push/url").contains("agent:***@"), "{out}");
    let stderr = mcp.close().await;
    assert!(
        !stderr.contains(&password) && !stderr.contains(&helper),
        "{stderr}"
    );
    let all = f.home.all_bytes();
    for (what, secret) in [
        ("the URL's password", &password),
        ("the credential helper's", &helper),
    ] {
        let found: Vec<String> = String::from_utf8_lossy(&all)
            .lines()
            .filter_map(|l| {
                let at = l.find(secret.as_str())?;
                let from = l[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
                Some(l[from..at].to_string())
            })
            .collect();
        assert!(
            found.is_empty(),
            "{what} canary is in the state directory: {found:?}"
        );
    }
}
