//! gitops `propose` through the real binary over MCP: a real repository under a granted root, a
//! bare remote over file:// pushed to by the host's git capability, and the stand-in forge
//! (`infra_tests::forge`, GitHub-shaped pull requests, real merges). The plan without
//! `apply: true`, the pull request opened once and returned again for the same branch, the
//! user's checkout left as it was, remotes the policy does not grant and hostile arguments
//! refused before anything is pushed, and canaries in the forge token and the git credentials
//! that never surface.

use std::path::{Path, PathBuf};

use infra_tests::argo::ArgoApi;
use infra_tests::forge::ForgeApi;
use infra_tests::git::{commit_all, git, init, init_bare, write};
use infra_tests::{Home, Mcp, canary, text, with_fields};
use serde_json::{Value, json};

/// A repository `app` under root `work` whose `origin` is a bare repository served by the
/// stand-in forge as `acme/app`; a second remote `elsewhere` the policy does not grant.
pub(crate) struct Setup {
    pub(crate) forge: ForgeApi,
    pub(crate) home: Home,
    pub(crate) work: tempfile::TempDir,
    pub(crate) remotes: tempfile::TempDir,
    /// The git profile's password (a canary).
    pub(crate) git_secret: String,
}

impl Setup {
    pub(crate) fn repo(&self) -> PathBuf {
        self.work.path().join("app")
    }

    pub(crate) fn bare(&self) -> PathBuf {
        self.remotes.path().join("app.git")
    }
}

/// The grants of a test: git in root `work` (writable), pushes to `remote` with the profile
/// `forge-git`, the http profiles of the forge and of Argo CD, the guard with change `windows`
/// (a TOML list).
fn policy(work: &Path, remote: &str, windows: &str) -> String {
    format!(
        r#"[roots]
work = {{ path = "{work}", read_only = false }}

[programs]
git = "/usr/bin/git"

[plugin.gitops.exec]
programs = ["git"]
roots = ["work"]
env = ["GIT_AUTHOR_*", "GIT_COMMITTER_*"]
read_only = false

[plugin.gitops.git]
remotes = ["{remote}"]
profiles = ["forge-git"]

[plugin.gitops.http]
profiles = ["forge", "argocd"]
hosts = ["127.0.0.1:*"]
[plugin.gitops.guard]
windows = {windows}
[plugin.gitops.artifacts]
[plugin.gitops.log]
"#,
        work = work.display()
    )
}

async fn setup() -> Setup {
    setup_with("[]").await
}

async fn setup_with(windows: &str) -> Setup {
    setup_for(windows, None).await
}

/// A setup whose profiles include `argocd` for the stand-in `argo` when given.
pub(crate) async fn setup_for(windows: &str, argo: Option<&ArgoApi>) -> Setup {
    let forge = ForgeApi::start().await.expect("stand-in forge");
    let work = tempfile::tempdir().unwrap();
    let remotes = tempfile::tempdir().unwrap();
    let secrets = remotes.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let bare = init_bare(&remotes.path().join("app.git"));
    init_bare(&remotes.path().join("elsewhere.git"));
    let url = format!("file://{}", bare.display());
    let dir = init(&work.path().join("app"));
    write(&dir, "k/app.yaml", "image: web:1\nreplicas: 2\n");
    write(&dir, "README.md", "app\n");
    commit_all(&dir, "first");
    git(&dir, &["remote", "add", "origin", &url]);
    git(
        &dir,
        &[
            "remote",
            "add",
            "elsewhere",
            &format!("file://{}", remotes.path().join("elsewhere.git").display()),
        ],
    );
    git(&dir, &["push", "-q", "origin", "main"]);
    forge.add_repo("acme/app", &bare);

    let token_file = secrets.join("forge-token");
    std::fs::write(&token_file, forge.token()).unwrap();
    let git_secret = canary("git-password");
    let git_file = secrets.join("git-password");
    std::fs::write(&git_file, &git_secret).unwrap();
    let home = Home::new();
    let mut profiles = json!({
        "forge": {"type": "http", "base_url": forge.url(),
                  "auth": {"type": "bearer", "token": format!("file:{}", token_file.display())}},
        "forge-git": {"type": "http", "base_url": "https://forge.invalid",
                      "auth": {"type": "basic", "user": "agent",
                               "password": format!("file:{}", git_file.display())}}
    });
    if let Some(a) = argo {
        let argo_file = secrets.join("argocd-token");
        std::fs::write(&argo_file, a.token()).unwrap();
        profiles["argocd"] = json!({"type": "http", "base_url": a.url(),
            "auth": {"type": "bearer", "token": format!("file:{}", argo_file.display())}});
    }
    home.policy(&policy(work.path(), &url, windows))
        .profiles(&profiles);
    Setup {
        forge,
        home,
        work,
        remotes,
        git_secret,
    }
}

pub(crate) const PATCH: &str = "diff --git a/k/app.yaml b/k/app.yaml
--- a/k/app.yaml
+++ b/k/app.yaml
@@ -1,2 +1,2 @@
-image: web:1
+image: web:2
 replicas: 2
";

/// A `propose` of PATCH on branch `branch`, with `extra` fields (a `null` one is left out).
fn args(branch: &str, extra: Value) -> Value {
    let mut a = with_fields(
        json!({"action": "propose", "root": "work", "path": "app", "branch": branch,
               "base": "main", "patch": PATCH, "message": "Bump web to 2\n\nRolls out web:2.",
               "author": {"name": "Ann Agent", "email": "ann@example.org"},
               "git_profile": "forge-git", "forge_profile": "forge", "repository": "acme/app"}),
        extra,
    );
    if let Some(o) = a.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    a
}

async fn call(mcp: &Mcp, a: Value) -> (bool, Value) {
    mcp.call("gitops", a).await
}

/// The commit `rev` names in `dir`, if any.
pub(crate) fn sha(dir: &Path, rev: &str) -> Option<String> {
    let out = infra_tests::git::command(dir)
        .args(["rev-parse", "--verify", "--quiet", rev])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(crate) fn posts(forge: &ForgeApi) -> usize {
    forge
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
}

#[tokio::test]
async fn propose_plans_then_opens_one_pull_request_per_branch_and_leaves_the_checkout_as_it_was() {
    let s = setup().await;
    let main_before = sha(&s.repo(), "main").unwrap();
    let mcp = s.home.mcp().await;

    // Without apply: the plan, and nothing anywhere changes.
    let (err, out) = call(&mcp, args("infra/bump-web", json!({}))).await;
    assert!(!err, "{out}");
    let p = &out["proposal"];
    assert_eq!(p["applied"], false, "{out}");
    assert_eq!(p["title"], "Bump web to 2");
    assert_eq!(p["url"], format!("file://{}", s.bare().display()));
    assert_eq!(p["diffstat"]["insertions"], 1, "{out}");
    let plan = text(p, "/plan");
    assert!(
        plan.contains("infra/bump-web") && plan.contains("apply: true"),
        "{plan}"
    );
    assert!(sha(&s.repo(), "refs/heads/infra/bump-web").is_none());
    assert!(sha(&s.bare(), "refs/heads/infra/bump-web").is_none());
    assert_eq!(posts(&s.forge), 0);

    // With apply: branch, commit by the call's author, push, pull request #1.
    let (err, out) = call(&mcp, args("infra/bump-web", json!({"apply": true}))).await;
    assert!(!err, "{out}");
    let p = &out["proposal"];
    assert_eq!(p["applied"], true, "{out}");
    assert_eq!(p["pushed"], true, "{out}");
    assert_eq!(p["pull_request"]["number"], 1, "{out}");
    assert_eq!(p["pull_request"]["existing"], false);
    assert!(
        text(p, "/pull_request/url").ends_with("/acme/app/pull/1"),
        "{out}"
    );
    assert_eq!(p["commit"]["author"], "Ann Agent");
    assert_eq!(p["diffstat"]["files_changed"], 1);
    let pushed = sha(&s.bare(), "refs/heads/infra/bump-web").expect("the branch was pushed");
    assert_eq!(p["commit"]["sha"], pushed.as_str());
    assert_eq!(
        git(&s.bare(), &["show", "infra/bump-web:k/app.yaml"]),
        "image: web:2\nreplicas: 2\n"
    );
    let pulls = s.forge.pulls("acme/app");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["head"]["sha"], pushed.as_str());
    assert_eq!(pulls[0]["title"], "Bump web to 2");
    assert_eq!(pulls[0]["body"], "Rolls out web:2.");
    // The user's checkout: back on main, main untouched, the work tree clean.
    assert_eq!(git(&s.repo(), &["branch", "--show-current"]).trim(), "main");
    assert_eq!(sha(&s.repo(), "main").unwrap(), main_before);
    assert_eq!(git(&s.repo(), &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(s.repo().join("k/app.yaml")).unwrap(),
        "image: web:1\nreplicas: 2\n"
    );

    // The same branch again: the open pull request, no new commit, no push, no second PR.
    let before = posts(&s.forge);
    let (err, out) = call(&mcp, args("infra/bump-web", json!({"apply": true}))).await;
    assert!(!err, "{out}");
    let p = &out["proposal"];
    assert_eq!(p["pull_request"]["number"], 1, "{out}");
    assert_eq!(p["pull_request"]["existing"], true, "{out}");
    assert_eq!(p["pushed"], false, "{out}");
    assert_eq!(posts(&s.forge), before, "no create request the second time");
    assert_eq!(sha(&s.bare(), "refs/heads/infra/bump-web").unwrap(), pushed);
    assert_eq!(s.forge.pulls("acme/app").len(), 1);

    // Whole files instead of a patch; the forge merges it and main moves on in the remote.
    let (err, out) = call(
        &mcp,
        args(
            "infra/scale",
            json!({"apply": true, "patch": null, "message": "Scale web to 5",
                   "files": [{"path": "k/app.yaml", "content": "image: web:1\nreplicas: 5\n"}]}),
        ),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["proposal"]["pull_request"]["number"], 2, "{out}");
    assert_eq!(
        git(&s.bare(), &["show", "infra/scale:k/app.yaml"]),
        "image: web:1\nreplicas: 5\n"
    );
    let merged = s.forge.merge("acme/app", 2).unwrap();
    assert_eq!(sha(&s.bare(), "main").unwrap(), merged);
    assert_eq!(
        git(&s.bare(), &["show", "main:k/app.yaml"]),
        "image: web:1\nreplicas: 5\n"
    );
    mcp.close().await;
}

#[tokio::test]
async fn ungranted_remotes_dirty_checkouts_and_hostile_arguments_are_refused_before_any_push() {
    let s = setup().await;
    let mcp = s.home.mcp().await;
    let elsewhere = s.remotes.path().join("elsewhere.git");

    // A remote whose URL the policy does not grant: denied by the host, nothing pushed there,
    // no pull request, the checkout back on main.
    let (err, out) = call(
        &mcp,
        args("infra/out", json!({"apply": true, "remote": "elsewhere"})),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(text(&out, "/error/message").contains("remotes"), "{out}");
    assert_eq!(git(&elsewhere, &["for-each-ref"]), "");
    assert!(sha(&s.bare(), "refs/heads/infra/out").is_none());
    assert_eq!(posts(&s.forge), 0);
    assert_eq!(git(&s.repo(), &["branch", "--show-current"]).trim(), "main");

    // Hostile arguments, each named by its field, before anything runs.
    let hostile = [
        (json!({"branch": "--force"}), "branch"),
        (json!({"branch": "../x"}), "branch"),
        (json!({"branch": "a..b"}), "branch"),
        (json!({"branch": "main"}), "branch"),
        (json!({"base": "-x"}), "base"),
        (json!({"remote": "--upload-pack=touch /tmp/x"}), "remote"),
        (json!({"repository": "../../admin"}), "repository"),
        (
            json!({"repository": "acme/app/pulls/1/merge"}),
            "repository",
        ),
        (
            json!({"patch": "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\nnew file mode 100755\n--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+touch /tmp/pwned\n"}),
            "patch",
        ),
        (
            json!({"patch": "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n"}),
            "patch",
        ),
        (
            json!({"patch": null, "files": [{"path": ".git/config", "content": "x"}]}),
            "files.path",
        ),
        (
            json!({"patch": null, "files": [{"path": "../out.txt", "content": "x"}]}),
            "files.path",
        ),
        (
            json!({"author": {"name": "A\nB", "email": "a@b"}}),
            "author.name",
        ),
        (json!({"forge_profile": ""}), "forge_profile"),
    ];
    for (extra, field) in hostile {
        let a = args(
            "infra/hostile",
            with_fields(json!({"apply": true}), extra.clone()),
        );
        let (err, out) = call(&mcp, a).await;
        assert!(err, "{extra}: {out}");
        assert_eq!(out["error"]["field"], field, "{extra}: {out}");
    }
    assert!(sha(&s.repo(), "refs/heads/infra/hostile").is_none());
    assert!(!s.repo().join(".git/hooks/pre-commit").exists());

    // A patch that does not apply: refused, the new branch removed, the checkout as it was.
    let (err, out) = call(
        &mcp,
        args(
            "infra/stale",
            json!({"apply": true, "patch": PATCH.replace("web:1", "web:0")}),
        ),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["field"], "patch", "{out}");
    assert!(sha(&s.repo(), "refs/heads/infra/stale").is_none());
    assert_eq!(git(&s.repo(), &["branch", "--show-current"]).trim(), "main");

    // A checkout with uncommitted changes is not touched.
    write(&s.repo(), "README.md", "edited by the user\n");
    let (err, out) = call(&mcp, args("infra/dirty", json!({"apply": true}))).await;
    assert!(err, "{out}");
    assert!(
        text(&out, "/error/message").contains("uncommitted"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(s.repo().join("README.md")).unwrap(),
        "edited by the user\n"
    );
    assert!(sha(&s.repo(), "refs/heads/infra/dirty").is_none());
    assert_eq!(posts(&s.forge), 0, "nothing reached the forge but reads");
    mcp.close().await;
}

#[tokio::test]
async fn secret_canaries_in_the_forge_token_and_git_credentials_never_surface() {
    let s = setup().await;
    let token = s.forge.token();
    let mcp = s.home.mcp().await;
    let mut shown = String::new();
    for extra in [json!({}), json!({"apply": true}), json!({"apply": true})] {
        let (err, out) = call(&mcp, args("infra/canary", extra)).await;
        assert!(!err, "{out}");
        shown.push_str(&out.to_string());
    }
    // A refusal by the forge (a closed pull request's head pushed again works; a bad profile
    // does not) does not show the token either.
    let (_, out) = call(
        &mcp,
        args(
            "infra/other",
            json!({"apply": true, "repository": "acme/missing"}),
        ),
    )
    .await;
    shown.push_str(&out.to_string());
    assert!(!shown.contains(&token), "the forge token surfaced");
    assert!(!shown.contains(&s.git_secret), "the git password surfaced");
    // The host, not the plugin, sent the token: the forge saw it on every request.
    assert!(
        s.forge
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(format!("Bearer {token}").as_str())),
        "every forge request carried the profile's token"
    );
    let stderr = mcp.close().await;
    assert!(!stderr.contains(&token) && !stderr.contains(&s.git_secret));
    let all = String::from_utf8_lossy(&s.home.all_bytes()).into_owned();
    assert!(
        !all.contains(&token),
        "the forge token is in the state directory"
    );
    assert!(
        !all.contains(&s.git_secret),
        "the git password is in the state directory"
    );
}

#[tokio::test]
async fn propose_pushes_over_real_ssh_with_a_host_held_key_whose_passphrase_never_surfaces() {
    let sshd = infra_tests::sshd::Sshd::start();
    let forge = ForgeApi::start().await.expect("stand-in forge");
    let work = tempfile::tempdir().unwrap();
    let remotes = tempfile::tempdir().unwrap();
    let bare = init_bare(&remotes.path().join("app.git"));
    let ssh_url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        bare.display()
    );
    let dir = init(&work.path().join("app"));
    write(&dir, "k/app.yaml", "image: web:1\nreplicas: 2\n");
    commit_all(&dir, "first");
    git(
        &dir,
        &["push", "-q", &format!("file://{}", bare.display()), "main"],
    );
    git(&dir, &["remote", "add", "origin", &ssh_url]);
    forge.add_repo("acme/app", &bare);

    let secrets = remotes.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let (token_file, pass_file, kh) = (
        secrets.join("forge-token"),
        secrets.join("passphrase"),
        secrets.join("known_hosts"),
    );
    std::fs::write(&token_file, forge.token()).unwrap();
    std::fs::write(&pass_file, &sshd.passphrase).unwrap();
    std::fs::write(
        &kh,
        infra_tests::git::known_hosts(&sshd.dir().join("host_ed25519.pub"), sshd.port),
    )
    .unwrap();
    let home = Home::new();
    home.policy(&policy(work.path(), &ssh_url, "[]")).profiles(&json!({
        "forge": {"type": "http", "base_url": forge.url(),
                  "auth": {"type": "bearer", "token": format!("file:{}", token_file.display())}},
        "forge-git": {"type": "ssh-key", "key": format!("file:{}", sshd.key_encrypted.display()),
                      "passphrase": format!("file:{}", pass_file.display()),
                      "known_hosts": format!("file:{}", kh.display())}
    }));
    let mcp = home.mcp().await;
    let (err, out) = call(&mcp, args("infra/bump-web", json!({"apply": true}))).await;
    assert!(!err, "{out}");
    assert_eq!(out["proposal"]["pushed"], true, "{out}");
    assert_eq!(out["proposal"]["url"], ssh_url.as_str());
    assert_eq!(out["proposal"]["pull_request"]["number"], 1, "{out}");
    assert!(sshd.accepted() >= 1, "the push went through sshd");
    assert_eq!(
        git(&bare, &["show", "infra/bump-web:k/app.yaml"]),
        "image: web:2\nreplicas: 2\n"
    );
    let key = std::fs::read_to_string(&sshd.key_encrypted).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_string();
    let shown = out.to_string();
    let token = forge.token();
    let stderr = mcp.close().await;
    let all = String::from_utf8_lossy(&home.all_bytes()).into_owned();
    for (what, secret) in [
        ("the key's passphrase", sshd.passphrase.as_str()),
        ("the private key", key_line.as_str()),
        ("the forge token", token.as_str()),
    ] {
        assert!(!shown.contains(secret), "{what} is in the answer");
        assert!(!stderr.contains(secret), "{what} is in stderr");
        assert!(!all.contains(secret), "{what} is in the state directory");
    }
}

#[tokio::test]
async fn outside_the_change_windows_the_guard_refuses_before_anything_is_pushed() {
    // A window three days from today never contains now.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day =
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][((secs / 86_400 + 3 + 3) % 7) as usize];
    let s = setup_with(&format!(r#"["{day} 00:00-24:00 UTC"]"#)).await;
    let mcp = s.home.mcp().await;
    let (err, out) = call(&mcp, args("infra/bump-web", json!({"apply": true}))).await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(text(&out, "/error/message").contains("window"), "{out}");
    assert!(sha(&s.bare(), "refs/heads/infra/bump-web").is_none());
    assert_eq!(posts(&s.forge), 0);
    assert_eq!(git(&s.repo(), &["branch", "--show-current"]).trim(), "main");
    mcp.close().await;
}

/// A hostile workspace: the repository `propose` works in carries hooks, drivers and commands in
/// its config and attributes, each of which would write a marker. Plain git on a copy springs
/// them; the whole propose (branch, patch, commit, push, pull request) springs none.
#[tokio::test]
async fn a_hostile_repository_runs_nothing_during_a_propose() {
    let s = setup().await;
    let dir = s.repo();
    let markers = s.remotes.path().join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let m = |name: &str| format!("touch {}/{name}", markers.display());
    // Attributes first, committed while no driver is defined.
    write(
        &dir,
        ".gitattributes",
        "*.yaml diff=evil filter=evil merge=evil\n",
    );
    commit_all(&dir, "attributes");
    git(&dir, &["push", "-q", "origin", "main"]);
    for hook in [
        "pre-commit",
        "commit-msg",
        "post-commit",
        "post-checkout",
        "pre-push",
        "reference-transaction",
        "post-index-change",
    ] {
        write(
            &dir.join(".git/hooks"),
            hook,
            format!("#!/bin/sh\n{}\n", m(hook)),
        );
        let exe = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(dir.join(".git/hooks").join(hook), exe).unwrap();
    }
    for (k, v) in [
        ("core.fsmonitor", format!("{}; echo", m("fsmonitor"))),
        ("diff.external", m("diff-external")),
        ("diff.evil.textconv", format!("{}; cat", m("textconv"))),
        ("filter.evil.clean", format!("{}; cat", m("filter-clean"))),
        ("filter.evil.smudge", format!("{}; cat", m("filter-smudge"))),
        ("merge.evil.driver", m("merge-driver")),
        ("core.sshCommand", m("ssh-command")),
        (
            "credential.helper",
            format!("!{}; echo password=x", m("credential")),
        ),
        ("gpg.program", m("gpg")),
        ("commit.gpgSign", "true".into()),
        (
            "remote.origin.receivepack",
            format!("{}; git-receive-pack", m("receivepack")),
        ),
    ] {
        git(&dir, &["config", k, &v]);
    }
    // The control: plain git on a copy of it runs the repository's code.
    let copy = s.work.path().join("control");
    let cp = std::process::Command::new("cp")
        .args(["-a"])
        .arg(&dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    let _ = infra_tests::git::command(&copy)
        .args(["commit", "--allow-empty", "-q", "-m", "control"])
        .output()
        .unwrap();
    let sprung = std::fs::read_dir(&markers).unwrap().count();
    assert!(sprung > 0, "the traps work outside infra");
    std::fs::remove_dir_all(&copy).unwrap();
    std::fs::remove_dir_all(&markers).unwrap();
    std::fs::create_dir_all(&markers).unwrap();

    let mcp = s.home.mcp().await;
    let (err, out) = call(&mcp, args("infra/hostile-repo", json!({"apply": true}))).await;
    assert!(!err, "{out}");
    assert_eq!(out["proposal"]["pushed"], true, "{out}");
    assert_eq!(out["proposal"]["pull_request"]["number"], 1, "{out}");
    let ran: Vec<String> = std::fs::read_dir(&markers)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ran.is_empty(), "the repository's code ran: {ran:?}");
    assert_eq!(
        git(&s.bare(), &["show", "infra/hostile-repo:k/app.yaml"]),
        "image: web:2\nreplicas: 2\n"
    );
    mcp.close().await;
}
