//! The `--servers` directory of `infra demo`: a `targets.json` and a `profiles.json` that point at
//! the harness's real sshd and PostgreSQL (target `demo-ssh`, profile `demo-pg`).

use serde_json::json;

use crate::pg::PgServer;
use crate::sshd::{Sshd, unique};

/// Makes database `demo` on `pg` and writes the demo's config files into a new temporary
/// directory, the password by `file:` reference.
pub fn servers_dir(sshd: &Sshd, pg: &PgServer) -> tempfile::TempDir {
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
    dir
}
