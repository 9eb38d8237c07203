//! `k8s list` of 5,000 pods (the plugin pages through them 500 at a time) vs `kubectl get pods
//! -o json` (which pages the same way, `--chunk-size=500`), both against the same stand-in
//! Kubernetes API (`infra_tests::kube`, loopback HTTPS) in this process.

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};
use infra_tests::Home;
use infra_tests::kube::KubeApi;
use serde_json::{Value, json};

use crate::harness::{Scale, call, run_quiet, secs, serve};
use crate::table::{Row, m, median};

/// The list's count, inline or in the artifact a result over the inline cap spills to.
fn count(home: &Home, out: &Value) -> Result<u64> {
    home.whole(out.clone())["count"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("k8s list: no count in {out}"))
}

/// The row: whole-namespace lists per second through infra vs kubectl.
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let pods = scale.n(5_000, 200);
    let n = scale.n(10, 3);
    let api = KubeApi::start().await?;
    api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}}));
    eprintln!("[k8s] storing {pods} pods in the stand-in");
    for i in 0..pods {
        api.put(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p-{i:05}"), "namespace": "load",
                         "labels": {"app": format!("a{}", i % 10)}},
            "spec": {"containers": [{"name": "app", "image": "shop/app:1"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0}]}}));
    }
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)?;
    let home = Home::new();
    home.profiles(&json!({
        "lab": {"type": "kubernetes", "kubeconfig": format!("file:{}", kubeconfig.display()),
                "context": "standin"}
    }));
    let server = serve(&home, &[]).await?;
    let list = json!({"action": "list", "profile": "lab", "namespace": "load", "kind": "pods",
                      "limit": pods});
    let check = |out: &Value| -> Result<()> {
        let got = count(&home, out)?;
        if got != pods as u64 {
            bail!("k8s list: {got} pods, not {pods}");
        }
        Ok(())
    };
    check(&call(&server.mcp, "k8s", &list).await?)?;
    let mut kubectl = Command::new("kubectl");
    kubectl
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", "pods", "-n", "load", "-o", "json"])
        .env("HOME", dir.path())
        .env_remove("KUBECONFIG");
    // The first run fills kubectl's discovery cache, as infra's first call fills its own.
    run_quiet(&mut kubectl)?;

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[k8s] rep {}/{}: {n} lists each", rep + 1, scale.reps);
        let t = Instant::now();
        for _ in 0..n {
            check(&call(&server.mcp, "k8s", &list).await?)?;
        }
        ours.push(n as f64 / secs(t));
        let mut spent = 0.0;
        for _ in 0..n {
            spent += run_quiet(&mut kubectl)?;
        }
        theirs.push(n as f64 / spent);
    }
    server.mcp.close().await;
    let (ours, theirs) = (median(&ours), median(&theirs));
    Ok(vec![Row {
        name: format!("k8s `list` of {pods} pods (paginated, 500 per page) ×{n}"),
        infra: m(ours, "lists/s"),
        baseline: Some((
            "`kubectl get pods -o json`, same stand-in API".into(),
            m(theirs, "lists/s"),
        )),
        target: None,
        note: format!(
            "{n} sequential lists × {} reps; the stand-in Kubernetes API runs in the bench process",
            scale.reps
        ),
    }])
}
