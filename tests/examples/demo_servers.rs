//! Starts the test harness's real sshd and PostgreSQL and runs `infra demo --servers DIR` against
//! them, so the demo also shows the ssh and psql tools. `scripts/demo.sh` runs this when both are
//! installed; the servers are torn down when the demo ends.

use std::process::{Command, ExitCode};

use infra_tests::pg::PgServer;
use infra_tests::sshd::Sshd;

fn main() -> ExitCode {
    let sshd = Sshd::start();
    let pg = PgServer::start();
    let dir = infra_tests::demo::servers_dir(&sshd, &pg);
    println!(
        "demo servers: OpenSSH sshd on 127.0.0.1:{}, PostgreSQL on 127.0.0.1:{} (temporary)",
        sshd.port, pg.port
    );
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
