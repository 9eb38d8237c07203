//! The gitops plugin's repository half through the real binary over MCP: `render` runs the real
//! `kubectl kustomize` in a repository under a granted root, `plan` renders and diffs the objects
//! against the stand-in Kubernetes API (`infra_tests::kube`) and stores the whole plan as an
//! artifact whose sha256 the answer gives; `render` of a chart runs a stand-in `helm` program
//! (no package provides helm here) that records the argv infra gives it.

use std::path::Path;

use infra_tests::git::{commit_all, init, write};
use infra_tests::kube::KubeApi;
use infra_tests::{Home, Mcp, text, with_fields};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Root `work` (read-only for gitops: rendering writes nothing), kubectl granted; the cluster
/// through the kubernetes profile `lab`.
fn policy(work: &Path) -> String {
    format!(
        r#"[roots]
work = {{ path = "{work}", read_only = false }}

[programs]
kubectl = "/usr/bin/kubectl"

[plugin.gitops.exec]
programs = ["kubectl"]
roots = ["work"]

[plugin.gitops.http]
profiles = ["*"]
[plugin.gitops.guard]
[plugin.gitops.kubernetes]
write_namespaces = ["apps-*"]
[plugin.gitops.artifacts]
[plugin.gitops.log]
"#,
        work = work.display()
    )
}

struct Setup {
    api: KubeApi,
    home: Home,
    work: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let api = KubeApi::start().await.expect("stand-in Kubernetes API");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let work = tempfile::tempdir().unwrap();
    let home = Home::new();
    home.policy(&policy(work.path())).profiles(&json!({
        "lab": {"type": "kubernetes", "kubeconfig": format!("file:{}", kubeconfig.display()),
                "context": "standin"}
    }));
    Setup {
        api,
        home,
        work,
        _dir: dir,
    }
}

/// A repository `shop` with a base (ConfigMap, Deployment) and an overlay `overlays/prod` that
/// puts them in `apps-shop`, adds the Namespace and pins the image to nginx:1.28.
fn shop_repo(work: &Path) {
    let dir = init(&work.join("shop"));
    write(
        &dir,
        "base/kustomization.yaml",
        "resources:\n- settings.yaml\n- deploy.yaml\n",
    );
    write(
        &dir,
        "base/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: green\n",
    );
    write(
        &dir,
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    write(
        &dir,
        "overlays/prod/kustomization.yaml",
        "namespace: apps-shop\nresources:\n- ../../base\n- ns.yaml\nimages:\n- name: nginx\n  newTag: \"1.28\"\n",
    );
    write(
        &dir,
        "overlays/prod/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps-shop\n",
    );
    commit_all(&dir, "manifests");
}

async fn call(mcp: &Mcp, args: Value) -> (bool, Value) {
    mcp.call("gitops", args).await
}

/// The whole text of an artifact, through the host's `artifacts` tool.
async fn artifact(mcp: &Mcp, uri: &str) -> String {
    let (err, out) = mcp
        .call(
            "artifacts",
            json!({"action": "get", "uri": uri, "length": 262_144}),
        )
        .await;
    assert!(!err, "{out}");
    text(&out, "/text").to_string()
}

#[tokio::test]
async fn render_runs_kubectl_kustomize_in_a_granted_root_and_summarises_the_objects() {
    let s = setup().await;
    shop_repo(s.work.path());
    let mcp = s.home.mcp().await;
    let (err, out) = call(
        &mcp,
        json!({"action": "render", "root": "work", "path": "shop", "overlay": "overlays/prod"}),
    )
    .await;
    assert!(!err, "{out}");
    let r = &out["render"];
    assert_eq!(r["count"], 3, "{out}");
    assert_eq!(r["command"], "kubectl kustomize overlays/prod", "{out}");
    let dep = r["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    assert_eq!(dep["namespace"], "apps-shop");
    assert_eq!(dep["images"], json!(["nginx:1.28"]));
    assert_eq!(r["images"], json!(["nginx:1.28"]));
    let manifests = artifact(&mcp, text(r, "/manifests/uri")).await;
    assert!(
        manifests.contains("image: nginx:1.28") && manifests.contains("namespace: apps-shop"),
        "{manifests}"
    );

    // Bad arguments name their field; a root or program the policy does not grant is refused.
    for (args, field) in [
        (json!({"overlay": "../../etc"}), "overlay"),
        (json!({"overlay": "--help"}), "overlay"),
        (json!({"path": "/etc"}), "path"),
        (json!({"overlay": "a", "chart": "b"}), "chart"),
        (json!({"values": ["v.yaml"]}), "values"),
    ] {
        let mut a = json!({"action": "render", "root": "work", "path": "shop"});
        a.as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        let (err, out) = call(&mcp, a.clone()).await;
        assert!(err, "{a}: {out}");
        assert_eq!(out["error"]["field"], field, "{a}: {out}");
    }
    let (err, out) = call(
        &mcp,
        json!({"action": "render", "root": "work", "path": "shop", "overlay": "nowhere"}),
    )
    .await;
    assert!(err, "{out}");
    assert!(
        text(&out, "/error/message").contains("kustomization"),
        "{out}"
    );
    let (err, out) = call(
        &mcp,
        json!({"action": "render", "root": "elsewhere", "path": "shop"}),
    )
    .await;
    assert!(err, "{out}");
    let (err, out) = call(
        &mcp,
        json!({"action": "render", "root": "work", "path": "shop", "chart": "base"}),
    )
    .await;
    assert!(err, "helm is not granted: {out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(text(&out, "/error/message").contains("helm"), "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn plan_renders_diffs_against_the_cluster_and_stores_the_plan_under_its_sha256() {
    let s = setup().await;
    shop_repo(s.work.path());
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-shop"}}));
    s.api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "apps-shop"}, "data": {"mode": "blue"}}));
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    let (err, out) = call(
        &mcp,
        json!({"action": "plan", "profile": "lab", "root": "work", "path": "shop",
               "overlay": "overlays/prod"}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["profile"], "lab");
    assert_eq!(out["render"]["count"], 3, "{out}");
    let plan = &out["plan"];
    assert_eq!(plan["summary"]["create"], 1, "{out}");
    assert_eq!(plan["summary"]["update"], 1, "{out}");
    assert_eq!(plan["summary"]["unchanged"], 1, "{out}");
    let settings = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "ConfigMap apps-shop/settings")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(settings["action"], "update");
    let d = settings["diff"].as_str().unwrap();
    assert!(
        d.contains("-  mode: blue\n") && d.contains("+  mode: green\n"),
        "{d}"
    );

    // The stored plan is exactly what the sha256 in the answer names, and holds every diff.
    let stored = &out["plan_artifact"];
    let sha = text(stored, "/sha256");
    assert_eq!(sha.len(), 64, "{out}");
    let body = artifact(&mcp, text(stored, "/uri")).await;
    assert_eq!(hex::encode(Sha256::digest(body.as_bytes())), sha);
    let saved: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(saved["kind"], "gitops-plan");
    assert_eq!(saved["profile"], "lab");
    assert_eq!(saved["summary"], plan["summary"]);
    assert_eq!(saved["objects"], plan["objects"]);
    assert_eq!(
        saved["source"]["manifests_sha256"],
        out["render"]["manifests"]["sha256"]
    );

    // Nothing was written: dry runs and reads only.
    let writes: Vec<_> = s
        .api
        .requests()
        .into_iter()
        .skip(before)
        .filter(|(m, p)| m != "GET" && !p.contains("dryRun=All"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(
        s.api
            .get("apps/v1", "Deployment", Some("apps-shop"), "web")
            .is_none()
    );

    // The same render and cluster give the same plan, under the same sha256.
    let (_, again) = call(
        &mcp,
        json!({"action": "plan", "profile": "lab", "root": "work", "path": "shop",
               "overlay": "overlays/prod"}),
    )
    .await;
    assert_eq!(
        again["plan_artifact"]["sha256"],
        out["plan_artifact"]["sha256"]
    );
    mcp.close().await;
}

/// A stand-in `helm` (no package provides helm here): it prints its argv as a YAML comment, then
/// the chart's `templates/*.yaml` with the release name and the `image:` of the values files
/// filled in — enough to check what infra runs and what it makes of the output.
const HELM_STANDIN: &str = r#"#!/bin/sh
printf '# argv:'; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\n'
[ "$1" = template ] || { echo "stand-in helm: only template is served" >&2; exit 1; }
release=$2; chart=$3; image=nginx:latest; shift 3
for a in "$@"; do
  case "$a" in --values=*) v=$(sed -n 's/^image: *//p' "${a#--values=}"); image=${v:-$image};; esac
done
for f in "$chart"/templates/*.yaml; do
  echo '---'; sed -e "s/{{ .Release.Name }}/$release/g" -e "s/{{ .Values.image }}/$image/g" "$f"
done
"#;

#[tokio::test]
async fn helm_template_runs_through_a_stand_in_helm_that_records_its_argv() {
    let s = setup().await;
    let bin = tempfile::tempdir().unwrap();
    let helm = bin.path().join("helm");
    std::fs::write(&helm, HELM_STANDIN).unwrap();
    std::fs::set_permissions(&helm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let policy = policy(s.work.path())
        .replace(
            "kubectl = \"/usr/bin/kubectl\"",
            &format!(
                "kubectl = \"/usr/bin/kubectl\"\nhelm = \"{}\"",
                helm.display()
            ),
        )
        .replace(
            "programs = [\"kubectl\"]",
            "programs = [\"kubectl\", \"helm\"]",
        );
    s.home.policy(&policy);
    let dir = init(&s.work.path().join("charts"));
    write(
        &dir,
        "web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    write(
        &dir,
        "web/templates/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image }}\n",
    );
    write(&dir, "values-prod.yaml", "image: nginx:1.29\n");
    commit_all(&dir, "chart");
    let mcp = s.home.mcp().await;

    let (err, out) = call(
        &mcp,
        json!({"action": "render", "root": "work", "path": "charts", "chart": "web",
               "values": ["values-prod.yaml"], "release": "shop", "namespace": "apps-shop"}),
    )
    .await;
    assert!(!err, "{out}");
    let r = &out["render"];
    assert_eq!(r["objects"][0]["kind"], "Deployment", "{out}");
    assert_eq!(r["objects"][0]["name"], "shop-web", "{out}");
    assert_eq!(r["images"], json!(["nginx:1.29"]), "{out}");
    let manifests = artifact(&mcp, text(r, "/manifests/uri")).await;
    assert_eq!(
        manifests.lines().next().unwrap(),
        "# argv: [template] [shop] [web] [--values=values-prod.yaml] [--namespace=apps-shop]",
        "every value glued to its option: {manifests}"
    );

    // A prompt-injected agent smuggling helm options through the values: refused by name
    // before helm runs (and `--post-renderer` would be refused by the host's own guard).
    let runs = |home: &Home| {
        infra_tests::audit_records(home.path())
            .iter()
            .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["cap"] == "exec")
            .count()
    };
    let before = runs(&s.home);
    for (field, bad) in [
        ("release", json!({"release": "--post-renderer=/bin/sh"})),
        (
            "namespace",
            json!({"namespace": "--kubeconfig=/root/.kube/config"}),
        ),
        ("values", json!({"values": ["/etc/passwd"]})),
    ] {
        let a = infra_tests::with_fields(
            json!({"action": "render", "root": "work", "path": "charts", "chart": "web"}),
            bad,
        );
        let (err, out) = call(&mcp, a).await;
        assert!(err, "{out}");
        assert_eq!(out["error"]["field"], field, "{out}");
    }
    assert_eq!(runs(&s.home), before, "helm never ran for them");
    mcp.close().await;
}

#[tokio::test]
async fn intent_dry_run_on_a_kustomize_repository_proposes_gitops_plan_and_runs_it_read_only() {
    let s = setup().await;
    shop_repo(s.work.path());
    // A root the operator defined but granted to no plugin: intent lists nothing of it.
    let private = tempfile::tempdir().unwrap();
    std::fs::write(private.path().join("main.tf"), "").unwrap();
    let p = policy(s.work.path());
    let p = p.replacen(
        "[programs]",
        &format!(
            "private = {{ path = \"{}\", read_only = true }}\n\n[programs]",
            private.path().display()
        ),
        1,
    );
    s.home.policy(&p);
    let mcp = s.home.mcp().await;
    let (err, out) = mcp
        .call("intent", json!({"action": "explain", "root": "private"}))
        .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert_eq!(out["error"]["field"], "root", "{out}");
    assert!(!out.to_string().contains("main.tf"), "{out}");
    let (err, out) = mcp
        .call(
            "intent",
            json!({"action": "dry_run", "root": "work", "path": "shop"}),
        )
        .await;
    assert!(!err, "{out}");
    let proposed = out["proposed"].as_array().unwrap();
    let plan = proposed
        .iter()
        .find(|p| p["type"] == "gitops.plan")
        .unwrap_or_else(|| panic!("gitops.plan proposed: {out}"));
    assert_eq!(plan["inputs"]["overlay"], "overlays/prod", "{out}");
    assert_eq!(plan["missing"], json!(["profile"]), "{out}");
    assert!(
        !proposed.iter().any(|p| p["type"] == "terraform.plan"),
        "{out}"
    );
    let kinds: Vec<&str> = proposed.iter().map(|p| text(p, "/effects/kind")).collect();
    let mut sorted = kinds.clone();
    sorted.sort_by_key(|k| *k != "read");
    assert_eq!(kinds, sorted, "reads are proposed first");

    // With the type and the missing input: the plan runs, reading only.
    let before = s.api.requests().iter().filter(|(m, _)| m != "GET").count();
    let (err, out) = mcp
        .call(
            "intent",
            json!({"action": "dry_run", "type": "gitops.plan", "root": "work", "path": "shop",
                   "inputs": {"profile": "lab"}}),
        )
        .await;
    assert!(!err, "{out}");
    let step = &out["run"]["steps"][0];
    assert_eq!(step["outcome"], "ok", "{out}");
    assert!(
        step["output"]["plan_artifact"]["sha256"].is_string(),
        "{out}"
    );
    let writes = s.api.requests().iter().filter(|(m, _)| m != "GET").count();
    // Server-side dry runs are PATCHes with dryRun=All; nothing else is written.
    assert!(
        s.api
            .requests()
            .iter()
            .skip(before)
            .filter(|(m, _)| m != "GET")
            .all(|(_, p)| p.contains("dryRun=All")),
        "{writes}"
    );

    // Bad input names the field.
    for (a, field) in [
        (
            json!({"action": "explain", "root": "work", "path": "../x"}),
            "path",
        ),
        (json!({"action": "explain", "root": "nowhere"}), "root"),
        (
            json!({"action": "compile", "root": "work", "path": "shop", "type": "gitops.plna"}),
            "type",
        ),
    ] {
        let (err, out) = mcp.call("intent", a).await;
        assert!(err, "{out}");
        assert_eq!(out["error"]["field"], field, "{out}");
    }
    let (_, out) = mcp
        .call(
            "intent",
            json!({"action": "explain", "root": "work", "path": "shop"}),
        )
        .await;
    assert!(out["context"]["evidence"]["kustomize"].is_array(), "{out}");
    // The user's capabilities.json in the state directory adds to the built-in map.
    std::fs::write(
        s.home.path().join("capabilities.json"),
        json!({"capabilities": {"shop.look": {"runbook": "repo.snapshot",
            "when": {"tags_any": ["kustomize"]}}}})
        .to_string(),
    )
    .unwrap();
    let (_, out) = mcp
        .call(
            "intent",
            json!({"action": "explain", "root": "work", "path": "shop"}),
        )
        .await;
    let mine = out["intents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "shop.look")
        .unwrap_or_else(|| panic!("the user's intent is listed: {out}"))
        .clone();
    assert_eq!(mine["fits"], true, "{out}");
}

#[tokio::test]
async fn the_k8s_runbooks_render_diff_apply_inspect_and_preflight() {
    let s = setup().await;
    shop_repo(s.work.path());
    s.home.policy(
        &(policy(s.work.path())
            + "[plugin.k8s.http]\nprofiles = [\"*\"]\n[plugin.k8s.artifacts]\n[plugin.k8s.log]\n"),
    );
    let mcp = s.home.mcp().await;
    let run = |name: &str, inputs: Value| json!({"action": "run", "name": name, "inputs": inputs});
    let at = json!({"profile": "lab", "root": "work", "path": "shop", "overlay": "overlays/prod"});
    let go = |name: &'static str, inputs: Value| {
        let mcp = &mcp;
        let home = &s.home;
        let a = run(name, inputs);
        async move {
            let (err, out) = mcp.call("runbook", a).await;
            let out = if err { out } else { home.whole(out) };
            assert!(!err, "{name}: {out}");
            out
        }
    };
    let mut render = at.clone();
    render.as_object_mut().unwrap().remove("profile");
    let out = go("k8s.render", render).await;
    assert_eq!(
        out["steps"][0]["output"]["render"]["objects"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{out}"
    );
    let out = go("k8s.diff", at.clone()).await;
    assert_eq!(
        out["steps"][1]["output"]["plan"]["summary"]["create"], 3,
        "{out}"
    );
    // Without apply from the inputs the apply step answers with the plan; nothing is written.
    let out = go("k8s.apply", at.clone()).await;
    assert!(out["steps"][1]["output"]["results"].is_null(), "{out}");
    assert!(
        s.api
            .get("apps/v1", "Deployment", Some("apps-shop"), "web")
            .is_none()
    );
    let out = go("k8s.apply", with_fields(at.clone(), json!({"apply": true}))).await;
    assert_eq!(
        out["steps"][1]["output"]["results"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{out}"
    );
    s.api.complete_rollout("Deployment", "apps-shop", "web");
    let out = go(
        "k8s.rollout.inspect",
        json!({"profile": "lab", "namespace": "apps-shop", "workloads": ["deployment/web"], "timeout_secs": 5}),
    )
    .await;
    assert_eq!(out["steps"][0]["outcome"], "ok", "{out}");
    assert_eq!(out["steps"][1]["outcome"], "ok", "{out}");
    let out = go("preflight.k8s", json!({"profile": "lab"})).await;
    let names = out["steps"][1]["output"].to_string();
    assert!(names.contains("apps-shop"), "{out}");
}
