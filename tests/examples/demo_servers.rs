//! Starts throw-away servers on loopback and runs `infra demo --servers DIR` against them: the
//! stand-in Kubernetes API always (it needs nothing installed), and the test harness's real sshd
//! and PostgreSQL when they are installed. `scripts/demo.sh` runs this; the servers are torn
//! down when the demo ends.

use std::process::{Command, ExitCode};

use infra_tests::kube::KubeApi;
use infra_tests::pg::PgServer;
use infra_tests::sshd::Sshd;

/// sshd and PostgreSQL's `initdb` are installed (as `scripts/test.sh` installs them).
fn have_sshd_and_pg() -> bool {
    let initdb = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|v| v.path().join("bin/initdb").exists());
    std::path::Path::new("/usr/sbin/sshd").exists() && initdb
}

fn main() -> ExitCode {
    // The stand-in serves from this runtime's worker threads while `infra demo` runs.
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let kube = runtime
        .block_on(KubeApi::start())
        .expect("start the stand-in Kubernetes API");
    let (sshd, pg) = if have_sshd_and_pg() {
        (Some(Sshd::start()), Some(PgServer::start()))
    } else {
        println!("demo servers: sshd or PostgreSQL is not installed, so no ssh and psql steps");
        (None, None)
    };
    let dir = infra_tests::demo::servers_dir(sshd.as_ref(), pg.as_ref(), Some(&kube));
    println!(
        "demo servers: stand-in Kubernetes API (not a real cluster) on {}",
        kube.url()
    );
    if let (Some(sshd), Some(pg)) = (&sshd, &pg) {
        println!(
            "demo servers: OpenSSH sshd on 127.0.0.1:{}, PostgreSQL on 127.0.0.1:{} (temporary)",
            sshd.port, pg.port
        );
    }
    let status = Command::new(infra_tests::infra_bin())
        .arg("demo")
        .arg("--servers")
        .arg(dir.path())
        .status()
        .expect("run infra demo");
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
