//! The demo's cluster steps, read-only, against the `--servers` profile `demo-cluster`: the
//! test harness's stand-in Kubernetes API (a loopback HTTPS server, not a real cluster) with its
//! own CA and a bearer token from a kubeconfig that only the host reads.

use serde_json::{Value, json};

use super::Demo;

/// `name status` of each row.
fn rows(out: &Value) -> String {
    out["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} {}",
                r["name"].as_str().unwrap_or("?"),
                r["status"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the k8s steps on `profile`.
pub(super) async fn steps(d: &mut Demo, profile: &str) {
    let (err, out) = d
        .call(
            "Cluster namespaces through the Kubernetes API (kubeconfig, CA and token stay in the host)",
            "k8s",
            json!({"action": "namespaces", "profile": profile}),
        )
        .await;
    println!("   → {}", rows(&out));
    d.expect(
        "namespace shop listed",
        !err && out["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["name"] == "shop")),
    );

    let (err, out) = d
        .call(
            "Pods of one namespace, one compact row each",
            "k8s",
            json!({"action": "list", "profile": profile, "namespace": "shop", "kind": "pods"}),
        )
        .await;
    println!("   → {}", rows(&out));
    d.expect("2 pods", !err && out["count"] == 2);

    let (err, out) = d
        .call(
            "diagnose: what is wrong in namespace shop, with the evidence",
            "k8s",
            json!({"action": "diagnose", "profile": profile, "namespace": "shop"}),
        )
        .await;
    for f in out["findings"].as_array().into_iter().flatten() {
        println!(
            "   → {} {} {} (restarts {}, {})",
            f["severity"].as_str().unwrap_or("?"),
            f["problem"].as_str().unwrap_or("?"),
            f["object"].as_str().unwrap_or("?"),
            f["restarts"],
            f["message"].as_str().unwrap_or("")
        );
    }
    d.expect(
        "the crash-looping worker found",
        !err && out["findings"].as_array().is_some_and(|a| {
            a.iter().any(|f| {
                f["problem"] == "CrashLoopBackOff"
                    && f["object"].as_str().is_some_and(|o| o.contains("worker"))
            })
        }),
    );
}
