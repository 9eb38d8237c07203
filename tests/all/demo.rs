//! `infra demo`, as README.md's first command runs it: alone (its own loopback HTTP server) and
//! with `--servers` against a real sshd and PostgreSQL and the stand-in Kubernetes API. Each step
//! checks its own result and the demo exits non-zero when one misbehaves, so these tests fail
//! when a step does.

use std::process::{Command, Output};

use infra_tests::pg::PgServer;
use infra_tests::sshd::Sshd;

fn run(args: &[&std::ffi::OsStr]) -> (Output, String) {
    let out = Command::new(infra_tests::infra_bin())
        .arg("demo")
        .args(args)
        .env("INFRA_LOG", "warn")
        .env_remove("INFRA_HOME")
        .env_remove("INFRA_UNSAFE_LOCAL")
        .output()
        .expect("run infra demo");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

#[test]
fn the_demo_alone_passes_every_step() {
    let (out, text) = run(&[]);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("demo finished: every step behaved as shown"),
        "{text}"
    );
    assert!(!text.contains('✗'), "{text}");
    for step in [
        "A git repository, read through the repo tool",
        "The local tool (a shell on this machine) is off without INFRA_UNSAFE_LOCAL=1",
    ] {
        assert!(
            text.contains(step),
            "the demo lacks the step {step:?}:\n{text}"
        );
    }
}

#[test]
fn the_demo_with_servers_adds_the_ssh_psql_and_cluster_steps() {
    let sshd = Sshd::start();
    let pg = PgServer::start();
    // The stand-in serves from this runtime's worker threads while the demo runs.
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let kube = runtime
        .block_on(infra_tests::kube::KubeApi::start())
        .expect("start the stand-in Kubernetes API");
    let dir = infra_tests::demo::servers_dir(Some(&sshd), Some(&pg), Some(&kube));
    let (out, text) = run(&["--servers".as_ref(), dir.path().as_os_str()]);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "A command over SSH",
        "Device monitoring",
        "A command past its timeout",
        "A background job",
        "jobs wait",
        "A query with parameters",
        "A delete without a filter is refused",
        "Export: COPY streamed by the host",
        "A syntax error",
        "Cluster namespaces through the Kubernetes API",
        "diagnose: what is wrong in namespace shop",
    ] {
        assert!(
            text.contains(step),
            "the demo lacks the step {step:?}:\n{text}"
        );
    }
    assert!(
        text.contains("demo finished: every step behaved as shown"),
        "{text}"
    );
    assert!(!text.contains('✗'), "{text}");
    assert_eq!(sshd.accepted(), 1, "the ssh steps share one connection");
}
