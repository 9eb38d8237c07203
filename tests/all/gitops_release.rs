//! gitops `release` through the real binary over MCP: a real repository under a granted root,
//! a bare remote pushed to by the host's `git` capability, the stand-in forge (real merges in
//! the bare repository) and the stand-in Argo CD, which judges each sync by what the deployed
//! revision holds in that same repository (an image tagged `broken` fails its rollout).
//!
//! A release proposed, merged, synced and verified; a second one whose rollout fails is rolled
//! back on its own; the audit record tells both stories in order; a release waiting for a
//! person's merge times out and goes on from the merge when called again; the plan changes
//! nothing; canaries in the forge, Argo CD and git credentials never surface.

use std::path::Path;

use infra_tests::argo::ArgoApi;
use infra_tests::git::{command, git};
use infra_tests::kube::KubeApi;
use infra_tests::progress::{Era, connect};
use infra_tests::{Mcp, audit_records, contains, text, with_fields};
use serde_json::{Value, json};

use crate::gitops_propose::{PATCH, Setup, posts, setup_for, sha};

/// A forge, Argo CD application `web` deploying `k/` of the bare repository's `main` (at its
/// first commit, history id 0), judged by the content of `k/app.yaml` at each revision.
async fn setup() -> (Setup, ArgoApi) {
    let argo = ArgoApi::start().await.expect("stand-in Argo CD");
    let s = setup_for("[]", Some(&argo)).await;
    let bare = s.bare();
    let first = sha(&bare, "main").unwrap();
    argo.add_app("web", &format!("file://{}", bare.display()), "k", &first);
    argo.judge("web", move |revision| {
        let out = command(&bare)
            .args(["show", &format!("{revision}:k/app.yaml")])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("web:broken")
            .then(|| "Deployment web: ImagePullBackOff (web:broken does not exist)".to_string())
    });
    (s, argo)
}

/// A `release` of branch `branch` changing `k/app.yaml` (by `PATCH`, or to `image` with
/// `files`), with `extra` fields.
fn args(branch: &str, image: Option<&str>, extra: Value) -> Value {
    let mut a = json!({"action": "release", "root": "work", "path": "app", "branch": branch,
        "base": "main", "message": format!("Release {branch}"),
        "author": {"name": "Ann Agent", "email": "ann@example.org"},
        "git_profile": "forge-git", "forge_profile": "forge", "repository": "acme/app",
        "argocd_profile": "argocd", "app": "web", "timeout_secs": 30});
    match image {
        None => a["patch"] = json!(PATCH),
        Some(i) => {
            a["files"] =
                json!([{"path": "k/app.yaml", "content": format!("image: {i}\nreplicas: 2\n")}])
        }
    }
    with_fields(a, extra)
}

/// Each stage's name and outcome, in order.
fn stages(release: &Value) -> Vec<(String, String)> {
    release["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no stages in {release}"))
        .iter()
        .map(|s| {
            (
                text(s, "/stage").to_string(),
                text(s, "/outcome").to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The end record of the `n`th release call (from 0), its events as `cap target`.
fn story(home: &Path, n: usize) -> Vec<String> {
    let ends: Vec<Value> = audit_records(home)
        .into_iter()
        .filter(|r| r["kind"] == "end" && r["tool"] == "gitops" && r["action"] == "release")
        .collect();
    ends.get(n)
        .unwrap_or_else(|| panic!("no end record of release call {n}: {ends:?}"))["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| format!("{} {}", text(e, "/cap"), text(e, "/target")))
        .collect()
}

/// The position of the first event at or after `from` that starts with `prefix`.
fn after(events: &[String], from: usize, prefix: &str) -> usize {
    events[from..]
        .iter()
        .position(|e| e.starts_with(prefix))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {prefix:?} after event {from} in {events:#?}"))
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

async fn call(mcp: &Mcp, a: Value) -> (bool, Value) {
    mcp.call("gitops", a).await
}

#[tokio::test]
async fn a_release_is_merged_synced_and_verified_and_a_failing_one_is_rolled_back() {
    let (s, argo) = setup().await;
    let mcp = s.home.mcp().await;

    // One: web:2, merged through the forge, synced, Healthy.
    let (err, out) = call(
        &mcp,
        args("infra/web-2", None, json!({"merge": true, "apply": true})),
    )
    .await;
    let out = s.home.whole(out);
    assert!(!err, "{out}");
    let r = &out["release"];
    assert_eq!(r["outcome"], "released", "{out}");
    assert_eq!(
        stages(r),
        pairs(&[
            ("propose", "done"),
            ("merge", "done"),
            ("sync", "done"),
            ("verify", "done")
        ]),
        "{out}"
    );
    let merged = sha(&s.bare(), "main").unwrap();
    assert_eq!(r["revision"], merged.as_str(), "{out}");
    assert_eq!(r["pull_request"]["number"], 1);
    assert_eq!(s.forge.pulls("acme/app")[0]["merged"], true);
    let app = argo.app("web");
    assert_eq!(app["status"]["sync"]["revision"], merged.as_str());
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    assert_eq!(r["verify"]["verdict"], "pass", "{out}");
    assert_eq!(r["rollback_to"]["id"], 0, "{out}");

    // Two: web:broken from the updated checkout; the rollout fails, the release rolls back to
    // release one's deployment and says so as an error.
    git(&s.repo(), &["pull", "-q", "--ff-only", "origin", "main"]);
    let (err, out) = call(
        &mcp,
        args(
            "infra/web-broken",
            Some("web:broken"),
            json!({"merge": true, "apply": true}),
        ),
    )
    .await;
    assert!(err, "a release that was rolled back is an error: {out}");
    assert_eq!(out["error"]["kind"], "failed", "{out}");
    let message = text(&out, "/error/message");
    assert!(
        message.contains("rolled back") && message.contains(&merged),
        "{message}"
    );
    let r = &out["error"]["detail"];
    assert_eq!(r["outcome"], "rolled_back", "{out}");
    assert_eq!(
        stages(r),
        pairs(&[
            ("propose", "done"),
            ("merge", "done"),
            ("sync", "failed"),
            ("rollback", "done")
        ]),
        "{out}"
    );
    let broken = sha(&s.bare(), "main").unwrap();
    assert_ne!(broken, merged);
    assert_eq!(r["revision"], broken.as_str());
    let app = argo.app("web");
    assert_eq!(
        app["status"]["sync"]["revision"],
        merged.as_str(),
        "Argo CD runs release one's revision again"
    );
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    let history: Vec<&str> = app["status"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["revision"].as_str().unwrap())
        .collect();
    let first = history[0];
    assert_eq!(
        history,
        [first, merged.as_str(), broken.as_str(), merged.as_str()]
    );

    // The audit log tells both stories in order: each stage marked, and each stage's own
    // requests after its mark (the forge's merge, Argo CD's sync and rollback).
    let forge = format!("http {}", host_port(&s.forge.url()));
    let argocd = format!("http {}", host_port(&argo.url()));
    let one = story(s.home.path(), 0);
    let p = after(&one, 0, "log stage propose");
    let pushed = after(&one, p, "git ");
    let m = after(&one, pushed, "log stage merge");
    after(&one, m, &forge);
    let y = after(&one, m, "log stage sync");
    after(&one, y, &argocd);
    after(&one, y, "log stage verify");
    assert!(
        !one.iter().any(|e| e.starts_with("log stage rollback")),
        "{one:#?}"
    );
    let two = story(s.home.path(), 1);
    let p = after(&two, 0, "log stage propose");
    let m = after(&two, p, "log stage merge");
    let y = after(&two, m, "log stage sync");
    let b = after(&two, y, "log stage rollback");
    after(&two, b, &argocd);
    assert!(
        !two.iter().any(|e| e.starts_with("log stage verify")),
        "{two:#?}"
    );
    let rollbacks = argo
        .requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p.ends_with("/rollback"))
        .count();
    assert_eq!(rollbacks, 1);

    // No credential surfaces anywhere: answers, audit, artifacts.
    let all = s.home.all_bytes();
    for secret in [s.forge.token(), argo.token(), s.git_secret.clone()] {
        assert!(
            !contains(&all, &secret),
            "a credential reached the state directory"
        );
        assert!(!out.to_string().contains(&secret));
    }
}

#[tokio::test]
async fn a_release_waiting_for_a_merge_goes_on_from_the_merge_when_called_again() {
    let (s, argo) = setup().await;
    let mcp = s.home.mcp().await;

    // Nobody merges within the wait: a timeout that says how to go on; nothing deployed.
    let a = args(
        "infra/web-2",
        None,
        json!({"apply": true, "timeout_secs": 2}),
    );
    let (err, out) = call(&mcp, a.clone()).await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "timeout", "{out}");
    assert!(
        text(&out, "/error/message").contains("call release again"),
        "{out}"
    );
    let r = &out["error"]["detail"];
    assert_eq!(r["outcome"], "waiting", "{out}");
    assert_eq!(
        stages(r),
        pairs(&[("propose", "done"), ("merge", "waiting")])
    );
    assert!(
        !argo.requests().iter().any(|(m, _)| m == "POST"),
        "nothing synced before the merge"
    );

    // A person merges it on the forge; the same call — from a new session, as after a
    // restart — goes on from there, and the client sees each stage as progress.
    let merged = s.forge.merge("acme/app", 1).expect("merge on the forge");
    let pulls_before = s.forge.pulls("acme/app").len();
    mcp.close().await;
    let (client, progress) = connect(&s.home, Era::Initialize).await;
    let r = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("gitops")
                .with_arguments(a.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let out = s.home.whole(r.structured_content.unwrap());
    let seen: Vec<String> = progress
        .lock()
        .unwrap()
        .iter()
        .filter_map(|p| p.message.clone())
        .filter(|m| !m.starts_with("argo ") && !m.starts_with("release: waiting"))
        .collect();
    let names: Vec<&str> = seen
        .iter()
        .map(|m| m.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(names, ["propose", "merge", "sync", "verify"], "{seen:?}");
    client.close().await;
    let mcp = s.home.mcp().await;
    let r = &out["release"];
    assert_eq!(
        stages(r),
        pairs(&[
            ("propose", "skipped"),
            ("merge", "skipped"),
            ("sync", "done"),
            ("verify", "done")
        ]),
        "{out}"
    );
    assert_eq!(r["revision"], merged.as_str());
    assert_eq!(
        s.forge.pulls("acme/app").len(),
        pulls_before,
        "no second pull request"
    );

    // Once more, as after a restart: everything is found done; Argo CD is not synced again.
    let syncs = |argo: &ArgoApi| {
        argo.requests()
            .iter()
            .filter(|(m, p)| m == "POST" && p.ends_with("/sync"))
            .count()
    };
    let before = syncs(&argo);
    let (err, out) = call(&mcp, a).await;
    let out = s.home.whole(out);
    assert!(!err, "{out}");
    assert_eq!(
        stages(&out["release"]),
        pairs(&[
            ("propose", "skipped"),
            ("merge", "skipped"),
            ("sync", "skipped"),
            ("verify", "done")
        ]),
        "{out}"
    );
    assert_eq!(syncs(&argo), before);
    assert_eq!(out["release"]["outcome"], "released");
}

#[tokio::test]
async fn a_release_plan_changes_nothing_and_hostile_arguments_are_refused() {
    let (s, argo) = setup().await;
    let mcp = s.home.mcp().await;
    let main_before = sha(&s.bare(), "main").unwrap();

    let (err, out) = call(&mcp, args("infra/web-2", None, json!({}))).await;
    let out = s.home.whole(out);
    assert!(!err, "{out}");
    let r = &out["release"];
    assert_eq!(r["outcome"], "planned");
    assert_eq!(
        stages(r),
        pairs(&[
            ("propose", "planned"),
            ("merge", "planned"),
            ("sync", "planned"),
            ("verify", "planned"),
            ("rollback", "planned")
        ])
    );
    assert!(
        text(r, "/stages/4/detail").contains("history id 0"),
        "{out}"
    );
    assert_eq!(posts(&s.forge), 0);
    assert!(!argo.requests().iter().any(|(m, _)| m != "GET"));
    assert_eq!(sha(&s.bare(), "main").unwrap(), main_before);
    assert!(sha(&s.repo(), "refs/heads/infra/web-2").is_none());

    // A prompt-injected agent: an app name that walks the API, a repository that is a path.
    for (field, bad) in [
        ("app", json!({"app": "../../api/v1/session"})),
        ("repository", json!({"repository": "acme/app/../../x"})),
        ("timeout_secs", json!({"timeout_secs": 0})),
    ] {
        let (err, out) = call(
            &mcp,
            args("infra/x", None, with_fields(bad, json!({"apply": true}))),
        )
        .await;
        assert!(err, "{out}");
        assert_eq!(out["error"]["field"], field, "{out}");
    }
    assert_eq!(posts(&s.forge), 0);
    assert!(!argo.requests().iter().any(|(m, _)| m != "GET"));
}

/// A compromised Argo CD: its failed syncs report every credential infra holds, and 300 KB of
/// noise. None of them surfaces — answer, audit, artifacts, log — and the answer stays small.
#[tokio::test]
async fn a_compromised_argo_cd_echoing_credentials_surfaces_none_and_the_answer_stays_bounded() {
    let (s, argo) = setup().await;
    let secrets = [s.forge.token(), argo.token(), s.git_secret.clone()];
    argo.fail_syncs(
        "web",
        &format!(
            "sync failed: forge {} argo {} git {} {}",
            secrets[0],
            secrets[1],
            secrets[2],
            "noise ".repeat(50_000)
        ),
    );
    let mcp = s.home.mcp().await;
    let (err, out) = call(
        &mcp,
        args("infra/web-2", None, json!({"apply": true, "merge": true})),
    )
    .await;
    let inline = out.to_string();
    assert!(
        inline.len() < 128 * 1024,
        "the answer is bounded: {} bytes",
        inline.len()
    );
    let whole = s.home.whole(out).to_string();
    assert!(
        err || whole.contains("failed"),
        "{}",
        &whole[..2000.min(whole.len())]
    );
    assert!(
        whole.contains("sync failed: forge "),
        "the report is there, scrubbed"
    );
    let stderr = mcp.close().await;
    let all = s.home.all_bytes();
    for secret in &secrets {
        assert!(
            !whole.contains(secret.as_str()),
            "the answer shows a credential"
        );
        assert!(
            !stderr.contains(secret.as_str()),
            "the log shows a credential"
        );
        assert!(
            !contains(&all, secret),
            "the state directory holds a credential"
        );
    }
}

#[tokio::test]
async fn a_release_goes_through_gitlab_merge_requests_and_gitea_pull_requests_too() {
    for kind in ["gitlab", "gitea"] {
        let (s, argo) = setup().await;
        // The same stand-in serves GitLab's API under /api/v4, as a GitLab profile names it.
        if kind == "gitlab" {
            let file = s.home.path().join("profiles.json");
            let mut profiles: Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            profiles["forge"]["base_url"] = json!(format!("{}/api/v4", s.forge.url()));
            s.home.profiles(&profiles);
        }
        let mcp = s.home.mcp().await;
        let a = args(
            "infra/web-2",
            None,
            json!({"forge": kind, "merge": true, "apply": true}),
        );

        // Proposed twice: one merge request, the second call finds it.
        let mut p = with_fields(a.clone(), json!({"action": "propose"}));
        for release_only in ["app", "argocd_profile", "merge", "timeout_secs"] {
            p.as_object_mut().unwrap().remove(release_only);
        }
        let (err, one) = call(&mcp, p.clone()).await;
        assert!(!err, "{kind}: {one}");
        let (err, two) = call(&mcp, p).await;
        assert!(!err, "{kind}: {two}");
        assert_eq!(
            one["proposal"]["pull_request"]["number"], 1,
            "{kind}: {one}"
        );
        assert_eq!(
            two["proposal"]["pull_request"]["existing"], true,
            "{kind}: {two}"
        );
        assert_eq!(s.forge.pulls("acme/app").len(), 1, "{kind}");

        let (err, out) = call(&mcp, a).await;
        let out = s.home.whole(out);
        assert!(!err, "{kind}: {out}");
        let r = &out["release"];
        assert_eq!(
            stages(r),
            pairs(&[
                ("propose", "done"),
                ("merge", "done"),
                ("sync", "done"),
                ("verify", "done")
            ]),
            "{kind}: {out}"
        );
        let merged = sha(&s.bare(), "main").unwrap();
        assert_eq!(r["revision"], merged.as_str(), "{kind}: {out}");
        assert_eq!(
            argo.app("web")["status"]["sync"]["revision"],
            merged.as_str()
        );
        let seen = s.forge.requests();
        let merge = seen
            .iter()
            .find(|q| q.path.ends_with("/merge"))
            .unwrap_or_else(|| panic!("{kind}: no merge request: {seen:?}"));
        match kind {
            "gitlab" => {
                assert_eq!(merge.method, "PUT");
                assert!(
                    seen.iter().all(|q| q
                        .path
                        .starts_with("/api/v4/projects/acme%2Fapp/merge_requests")),
                    "{seen:?}"
                );
                assert!(
                    text(r, "/pull_request/url").contains("/-/merge_requests/1"),
                    "{out}"
                );
            }
            _ => {
                assert_eq!(merge.method, "POST");
                assert_eq!(merge.body["Do"], "merge");
            }
        }
    }
}

/// A Flux Kustomization `web` in `flux-system` on the stand-in Kubernetes API whose controller
/// applies what the bare repository's `main` holds at each reconcile: Ready at `main@sha1:<sha>`,
/// or not Ready when `k/app.yaml` names a broken image. The policy adds the kubernetes profile
/// `lab` and writes (reconcile requests) in `flux-system`.
async fn flux_setup() -> (Setup, KubeApi, tempfile::TempDir) {
    let (s, _argo) = setup().await;
    let api = KubeApi::start().await.expect("stand-in Kubernetes API");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let file = s.home.path().join("profiles.json");
    let mut profiles: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    profiles["lab"] = json!({"type": "kubernetes",
        "kubeconfig": format!("file:{}", kubeconfig.display()), "context": "standin"});
    s.home.profiles(&profiles);
    let policy = std::fs::read_to_string(s.home.path().join("policy.toml")).unwrap();
    let policy = policy.replace(
        "profiles = [\"forge\", \"argocd\"]",
        "profiles = [\"forge\", \"argocd\", \"lab\"]",
    ) + "[plugin.gitops.kubernetes]\nwrite_namespaces = [\"flux-system\"]\n";
    s.home.policy(&policy);
    api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}));
    api.put(json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "web", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./k", "sourceRef": {"kind": "GitRepository", "name": "app"}}}));
    let bare = s.bare();
    api.judge_flux("Kustomization", "flux-system", "web", move || {
        let main = infra_tests::git::git(&bare, &["rev-parse", "main"])
            .trim()
            .to_string();
        let yaml = infra_tests::git::git(&bare, &["show", "main:k/app.yaml"]);
        let revision = format!("main@sha1:{main}");
        let outcome = if yaml.contains("web:broken") {
            (
                false,
                "HealthCheckFailed".to_string(),
                "Deployment/web: ImagePullBackOff (web:broken)".to_string(),
            )
        } else {
            (
                true,
                "ReconciliationSucceeded".to_string(),
                format!("Applied revision: {revision}"),
            )
        };
        (revision, outcome)
    });
    (s, api, dir)
}

/// A Flux release of `branch`: `kustomization` instead of `app`.
fn flux_args(branch: &str, image: Option<&str>, extra: Value) -> Value {
    let mut a = args(branch, image, extra);
    let o = a.as_object_mut().unwrap();
    o.remove("app");
    o.remove("argocd_profile");
    o.insert("kustomization".into(), json!("web"));
    o.insert("profile".into(), json!("lab"));
    a
}

#[tokio::test]
async fn a_flux_release_is_reconciled_and_a_failing_one_is_reverted_through_a_pull_request() {
    let (s, api, _dir) = flux_setup().await;
    let mcp = s.home.mcp().await;

    let (err, out) = call(
        &mcp,
        flux_args("infra/web-2", None, json!({"merge": true, "apply": true})),
    )
    .await;
    let out = s.home.whole(out);
    assert!(!err, "{out}");
    let r = &out["release"];
    assert_eq!(
        stages(r),
        pairs(&[
            ("propose", "done"),
            ("merge", "done"),
            ("sync", "done"),
            ("verify", "done")
        ]),
        "{out}"
    );
    let good = sha(&s.bare(), "main").unwrap();
    assert_eq!(r["outcome"], "released");
    assert!(
        text(r, "/reconciles/0/status/revision").ends_with(&good),
        "{out}"
    );

    // The broken one: reconcile fails, the change is reverted by pull request #3, merged, and
    // Flux applies the revert: main holds web:2 again.
    git(&s.repo(), &["pull", "-q", "--ff-only", "origin", "main"]);
    let (err, out) = call(
        &mcp,
        flux_args(
            "infra/web-broken",
            Some("web:broken"),
            json!({"merge": true, "apply": true}),
        ),
    )
    .await;
    assert!(err, "{out}");
    let r = &out["error"]["detail"];
    assert_eq!(r["outcome"], "rolled_back", "{out}");
    assert_eq!(
        stages(r),
        pairs(&[
            ("propose", "done"),
            ("merge", "done"),
            ("sync", "failed"),
            ("rollback", "done")
        ]),
        "{out}"
    );
    assert_eq!(r["revert"]["branch"], "infra/web-broken-revert", "{out}");
    let pulls = s.forge.pulls("acme/app");
    assert_eq!(pulls.len(), 3, "{pulls:?}");
    assert_eq!(pulls[2]["head"]["ref"], "infra/web-broken-revert");
    assert_eq!(pulls[2]["merged"], true);
    let main = git(&s.bare(), &["show", "main:k/app.yaml"]);
    assert!(
        main.contains("image: web:2"),
        "the revert is on main: {main}"
    );
    let k = api
        .get(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some("flux-system"),
            "web",
        )
        .unwrap();
    let now = sha(&s.bare(), "main").unwrap();
    assert_eq!(
        k["status"]["lastAppliedRevision"],
        format!("main@sha1:{now}"),
        "{k}"
    );
    assert_eq!(k["status"]["conditions"][0]["status"], "True", "{k}");
    assert_eq!(
        infra_tests::git::git(&s.repo(), &["branch", "--show-current"]).trim(),
        "main",
        "the checkout is left on its branch"
    );

    // Called again, as after a restart: the revert is found merged; nothing is deployed again.
    let reconciles = |api: &KubeApi| {
        api.requests()
            .iter()
            .filter(|(m, p)| m == "PATCH" && p.contains("kustomizations"))
            .count()
    };
    let before = reconciles(&api);
    let (err, out) = call(
        &mcp,
        flux_args(
            "infra/web-broken",
            Some("web:broken"),
            json!({"merge": true, "apply": true}),
        ),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["detail"]["outcome"], "rolled_back", "{out}");
    assert!(text(&out, "/error/message").contains("reverted"), "{out}");
    assert_eq!(
        reconciles(&api),
        before,
        "no reconcile of the broken revision again"
    );
}

/// A built-in runbook run through MCP; the run's answer (spilled ones read back).
async fn runbook(s: &Setup, mcp: &Mcp, name: &str, inputs: Value) -> (bool, Value) {
    let (err, out) = mcp
        .call(
            "runbook",
            json!({"action": "run", "name": name, "inputs": inputs}),
        )
        .await;
    (err, if err { out } else { s.home.whole(out) })
}

#[tokio::test]
async fn the_gitops_runbooks_propose_sync_verify_roll_back_and_release() {
    let (s, argo) = setup().await;
    let mcp = s.home.mcp().await;
    let first = sha(&s.bare(), "main").unwrap();
    let common = json!({"root": "work", "path": "app", "base": "main",
        "author": {"name": "Ann Agent", "email": "ann@example.org"},
        "git_profile": "forge-git", "forge_profile": "forge", "repository": "acme/app"});

    // gitops.propose without apply: the plan, nothing pushed.
    let (err, out) = runbook(
        &s,
        &mcp,
        "gitops.propose",
        with_fields(
            common.clone(),
            json!({"branch": "infra/web-2", "patch": PATCH, "message": "web 2"}),
        ),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(
        out["steps"][0]["output"]["proposal"]["applied"], false,
        "{out}"
    );
    assert_eq!(posts(&s.forge), 0);
    let (err, out) = runbook(
        &s,
        &mcp,
        "gitops.propose",
        with_fields(
            common.clone(),
            json!({"branch": "infra/web-2", "patch": PATCH, "message": "web 2", "apply": true}),
        ),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(
        out["steps"][0]["output"]["proposal"]["pull_request"]["number"], 1,
        "{out}"
    );
    let merged = s.forge.merge("acme/app", 1).unwrap();

    // gitops.sync to the merge, gitops.verify, then gitops.rollback to the one before.
    let (err, out) = runbook(
        &s,
        &mcp,
        "gitops.sync",
        json!({"app": "web", "argocd_profile": "argocd", "revision": merged, "apply": true}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["steps"][0]["outcome"], "ok", "{out}");
    assert_eq!(
        out["steps"][1]["outcome"], "skipped",
        "Flux is not asked: {out}"
    );
    assert_eq!(
        argo.app("web")["status"]["sync"]["revision"],
        merged.as_str()
    );
    let (err, out) = runbook(
        &s,
        &mcp,
        "gitops.verify",
        json!({"app": "web", "argocd_profile": "argocd"}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(
        out["steps"][0]["output"]["verify"]["verdict"], "pass",
        "{out}"
    );
    let (err, out) = runbook(
        &s,
        &mcp,
        "gitops.rollback",
        json!({"app": "web", "argocd_profile": "argocd", "apply": true}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["steps"][2]["outcome"], "ok", "{out}");
    assert_eq!(
        argo.app("web")["status"]["sync"]["revision"],
        first.as_str()
    );

    // gitops.release: the whole cycle as one runbook.
    git(&s.repo(), &["pull", "-q", "--ff-only", "origin", "main"]);
    let (err, out) = runbook(
        &s,
        &mcp,
        "gitops.release",
        with_fields(
            common,
            json!({"branch": "infra/web-3", "files": [{"path": "k/app.yaml", "content": "image: web:3\nreplicas: 2\n"}],
                   "message": "web 3", "merge": true, "app": "web", "argocd_profile": "argocd",
                   "timeout_secs": 30, "apply": true}),
        ),
    )
    .await;
    assert!(!err, "{out}");
    let r = &out["steps"][0]["output"]["release"];
    assert_eq!(r["outcome"], "released", "{out}");
    assert_eq!(
        argo.app("web")["status"]["sync"]["revision"],
        sha(&s.bare(), "main").unwrap().as_str()
    );
}
