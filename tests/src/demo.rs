//! The `--servers` directory of `infra demo`: a `targets.json` and a `profiles.json` that point at
//! the harness's real sshd and PostgreSQL (target `demo-ssh`, profile `demo-pg`) and at the
//! stand-in Kubernetes API (profile `demo-cluster`), each when it was started.

use serde_json::json;

use crate::kube::KubeApi;
use crate::pg::PgServer;
use crate::sshd::{Sshd, unique};

/// Writes the demo's config files into a new temporary directory for the servers given (secrets
/// by `file:` reference); makes database `demo` on `pg`.
pub fn servers_dir(
    sshd: Option<&Sshd>,
    pg: Option<&PgServer>,
    kube: Option<&KubeApi>,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut targets = serde_json::Map::new();
    let mut profiles = serde_json::Map::new();
    if let Some(sshd) = sshd {
        targets.insert("demo-ssh".into(), sshd.target(false, None));
    }
    if let Some(pg) = pg {
        let password = unique("demo-pg-password");
        pg.create_db("demo", &password);
        let pw_file = dir.path().join("pg-password");
        std::fs::write(&pw_file, &password).expect("write the password file");
        profiles.insert(
            "demo-pg".into(),
            json!({"type": "postgres", "host": "127.0.0.1", "port": pg.port,
                "user": "demo", "database": "demo", "password": format!("file:{}", pw_file.display())}),
        );
    }
    if let Some(kube) = kube {
        let kubeconfig = dir.path().join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig)
            .expect("write the stand-in's kubeconfig");
        profiles.insert(
            "demo-cluster".into(),
            json!({"type": "kubernetes", "kubeconfig": format!("file:{}", kubeconfig.display()),
                   "context": "standin"}),
        );
        seed_cluster(kube);
    }
    std::fs::write(
        dir.path().join("targets.json"),
        serde_json::Value::Object(targets).to_string(),
    )
    .expect("write targets.json");
    std::fs::write(
        dir.path().join("profiles.json"),
        serde_json::Value::Object(profiles).to_string(),
    )
    .expect("write profiles.json");
    dir
}

/// The demo's cluster: namespace `shop` with a healthy `web` deployment and a `worker` pod
/// that crash-loops, for `k8s diagnose` to find.
pub fn seed_cluster(kube: &KubeApi) {
    kube.put(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"},
                    "status": {"phase": "Active"}}),
    );
    kube.put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}));
    kube.complete_rollout("Deployment", "shop", "web");
    for (pod, app, image) in [
        ("web-7d9f-abcde", "web", "nginx:1.27"),
        ("worker-5c6b-xyz12", "worker", "shop/worker:2.1"),
    ] {
        kube.put(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": "shop", "labels": {"app": app}},
            "spec": {"containers": [{"name": app, "image": image}], "nodeName": "node-1"},
            "status": {"phase": "Running", "containerStatuses": [{"name": app, "ready": true,
                "restartCount": 0, "image": image, "state": {"running": {}}}]}}));
    }
    kube.set_previous_logs(
        "shop",
        "worker-5c6b-xyz12",
        "worker",
        "starting worker 2.1\nerror: DATABASE_URL is not set\n",
    );
    kube.crash_loop("shop", "worker-5c6b-xyz12", "worker", 7, "Error");
}
