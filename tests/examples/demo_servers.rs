//! Starts the test harness's real sshd and PostgreSQL and runs `infra demo --servers DIR` against
//! them, so the demo also shows the ssh and psql tools. `scripts/demo.sh` runs this when both are
//! installed; the servers are torn down when the demo ends.

use std::process::{Command, ExitCode};

use infra_tests::pg::PgServer;
use infra_tests::sshd::{Sshd, unique};
use serde_json::json;

fn main() -> ExitCode {
    let sshd = Sshd::start();
    let pg = PgServer::start();
    let password = unique("demo-pg-password");
    pg.create_db("demo", &password);
    let dir = tempfile::tempdir().expect("temp dir");
    let pw_file = dir.path().join("pg-password");
    std::fs::write(&pw_file, &password).expect("write the password file");
    std::fs::write(
        dir.path().join("targets.json"),
        json!({"demo-ssh": sshd.target(false, None)}).to_string(),
    )
    .expect("write targets.json");
    std::fs::write(
        dir.path().join("profiles.json"),
        json!({"demo-pg": {"type": "postgres", "host": "127.0.0.1", "port": pg.port,
            "user": "demo", "database": "demo", "password": format!("file:{}", pw_file.display())}})
        .to_string(),
    )
    .expect("write profiles.json");
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
