//! The replay of the replaced tool's catalog against live backends: for every tool and action it
//! documents (`tests/data/seed_tool_catalog.json` lists them), a call shaped as it documents it —
//! its tool, action and field names — through the real binary over MCP, with a real sshd target
//! `box`, a real PostgreSQL profile `db`, loopback HTTP servers, a real git repository as the
//! root `workspace` (with a bare remote) and a real directory for `local`. Objects a call needs
//! (a job, an artifact, a runbook, a commit to revert) are made first and named by their real
//! ids. Every answer is classified: ok; dropped on purpose (the message says so and points at
//! docs/compat.md); not granted (kind `denied`, naming the grant) where the test leaves the
//! grant out on purpose; or one of the few [`ALLOWED`] answers, each with its reason. Anything
//! else fails the test.

use std::path::Path;

use infra_tests::data_server::DataServer;
use infra_tests::fixture_server::FixtureServer;
use infra_tests::git::{commit_all, git, head, init, init_bare, write};
use infra_tests::pg::PgServer;
use infra_tests::sshd::Sshd;
use infra_tests::{Home, Mcp, canary, contains, text};
use serde_json::{Value, json};

/// The page that lists what infra dropped on purpose, and why.
const COMPAT_MD: &str = include_str!("../../docs/compat.md");

/// The env var the postgres profile's password reference names.
const PW_VAR: &str = "INFRA_TEST_REPLAY_PG_PASSWORD";

/// Answers that are neither ok, dropped nor a deliberate missing grant, and still right: (infra's
/// tool, action as sent, error kind, why it is the expected answer). Empty: every call succeeds
/// or is dropped. A write sent without `apply: true` (the replaced pipeline tool had no such
/// field) is answered `ok` with its plan and `applied: false` — the expected answer, counted as
/// ok, not listed here.
const ALLOWED: &[(&str, &str, &str, &str)] = &[];

/// Calls answered `denied` because this test grants on purpose less than they need: (infra's
/// tool, action as sent, a word the message must name — the grant to add). Empty: the policy
/// grants every call what it needs, so a denial is a failure.
const NOT_GRANTED: &[(&str, &str, &str)] = &[];

/// The backends and the state directory the replay runs against.
struct World {
    sshd: Sshd,
    pg: PgServer,
    http: FixtureServer,
    data: DataServer,
    /// The root `workspace`: a git repository with a kustomize overlay, pushed to `remote`.
    repo: tempfile::TempDir,
    /// The bare repository `origin` points at.
    remote: tempfile::TempDir,
    /// Where `local` reads and writes, and where sftp paths on `box` live (same machine).
    scratch: tempfile::TempDir,
    password: String,
    home: Home,
}

/// The CSV the data server answers `GET /data` with: rows for table `t` (`a`, `b`).
const CSV: &str = "a,b\n10,ten\n11,eleven\n";

fn policy(repo: &Path, remote: &str) -> String {
    format!(
        r#"[roots]
workspace = {{ path = "{repo}", read_only = false }}

[programs]
git = "/usr/bin/git"
kubectl = "/usr/bin/kubectl"

[plugin.http.http]
hosts = ["127.0.0.1:*"]
[plugin.http.artifacts]
[plugin.http.log]

[plugin.ssh.ssh]
targets = ["box"]
[plugin.ssh.artifacts]
[plugin.ssh.log]

[plugin.psql.postgres]
profiles = ["db"]
read_only = false
[plugin.psql.artifacts]
[plugin.psql.log]

[plugin.pipeline.http]
hosts = ["127.0.0.1:*"]
[plugin.pipeline.ssh]
targets = ["box"]
[plugin.pipeline.postgres]
profiles = ["db"]
read_only = false
[plugin.pipeline.artifacts]
[plugin.pipeline.guard]
windows = []
[plugin.pipeline.log]

[plugin.repo.fs]
roots = ["workspace"]
read_only = false
[plugin.repo.exec]
programs = ["git", "kubectl"]
roots = ["workspace"]
env = ["GIT_AUTHOR_*", "GIT_COMMITTER_*"]
read_only = false
[plugin.repo.git]
remotes = ["{remote}"]
[plugin.repo.artifacts]
[plugin.repo.log]

[plugin.local.fs]
unsafe = true
read_only = false
[plugin.local.exec]
unsafe = true
env = ["*"]
read_only = false
[plugin.local.artifacts]
[plugin.local.log]
"#,
        repo = repo.display(),
    )
}

impl World {
    async fn start() -> World {
        let password = canary("replaypg");
        let pg = PgServer::start();
        pg.create_db("app", &password);
        pg.psql(
            "app",
            "SET ROLE app; CREATE TABLE t (a int, b text); \
             INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');",
        );
        let sshd = Sshd::start();
        let http = FixtureServer::start().await.unwrap();
        let data = DataServer::start(CSV.as_bytes().to_vec()).await.unwrap();
        let repo = tempfile::tempdir().unwrap();
        let remote = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        init_bare(remote.path());
        let r = repo.path();
        init(r);
        write(r, "README.md", "replay\n");
        write(
            r,
            "deploy/kustomization.yaml",
            "resources:\n- deployment.yaml\n",
        );
        write(
            r,
            "deploy/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  \
             selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      \
             labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        \
             image: nginx:1.27\n",
        );
        // A user's repository has an identity; commits and reverts by the replay use it.
        git(r, &["config", "user.name", "Replay User"]);
        git(r, &["config", "user.email", "replay@example.com"]);
        commit_all(r, "first");
        let url = format!("file://{}", remote.path().display());
        git(r, &["remote", "add", "origin", &url]);
        git(r, &["push", "-q", "-u", "origin", "main"]);
        std::fs::write(scratch.path().join("read.txt"), "local file\n").unwrap();
        std::fs::write(scratch.path().join("remote.txt"), "on the box\n").unwrap();
        let home = Home::new();
        home.policy(&policy(r, &url)).profiles(&json!({
            "db": {"type": "postgres", "host": "127.0.0.1", "port": pg.port, "user": "app",
                   "database": "app", "password": format!("env:{PW_VAR}")},
        }));
        std::fs::write(
            home.path().join("targets.json"),
            json!({"box": sshd.target(false, None)}).to_string(),
        )
        .unwrap();
        World {
            sshd,
            pg,
            http,
            data,
            repo,
            remote,
            scratch,
            password,
            home,
        }
    }

    async fn serve(&self) -> Mcp {
        let pw = self.password.clone();
        self.home
            .mcp_with(move |c| {
                c.env(PW_VAR, pw).env("INFRA_UNSAFE_LOCAL", "1");
            })
            .await
    }

    fn at(&self, rel: &str) -> String {
        self.scratch.path().join(rel).display().to_string()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http.base_url())
    }
}

/// What earlier calls made, named by their real ids, and a counter for fresh names.
struct Replay<'a> {
    w: &'a World,
    mcp: &'a Mcp,
    /// A finished background job on `box`.
    job: String,
    /// An artifact: a spilled download.
    artifact: String,
    n: usize,
}

/// Strips the `mcp_` prefix and maps the replaced tool's names to its families.
fn family(tool: &str) -> &str {
    match tool.trim_start_matches("mcp_") {
        "ssh_manager" | "ssh" => "ssh",
        "api_client" | "api" | "http" => "http",
        "psql_manager" | "sql" | "psql" => "psql",
        "jobs" | "job" => "jobs",
        other => other,
    }
}

impl Replay<'_> {
    async fn call(&self, tool: &str, args: Value) -> Value {
        let (err, out) = self.mcp.call(tool, args.clone()).await;
        assert!(!err, "setup call {tool} {args}: {out}");
        out
    }

    /// A background job on `box` that runs until cancelled.
    async fn long_job(&self) -> String {
        let out = self
            .call(
                "ssh",
                json!({"action": "exec_detached", "target": "box", "command": "sleep 60"}),
            )
            .await;
        text(&out, "/job/id").to_string()
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.n += 1;
        format!("{prefix}-{}", self.n)
    }

    /// The fields a call of `tool` `action` carries, by the replaced tool's names; makes what it
    /// needs first.
    async fn sample(&mut self, tool: &str, action: &str) -> Value {
        let w = self.w;
        let fam = family(tool);
        match (fam, action) {
            ("state", "set") => json!({"key": "replay.k", "value": {"n": 1}, "scope": "session"}),
            ("state", "get" | "unset") => json!({"key": "replay.k", "scope": "session"}),
            ("state", "list" | "clear") => json!({"prefix": "replay.", "scope": "session"}),
            ("state", _) => json!({"scope": "session"}),
            ("jobs" | "ssh", "job_cancel" | "job_kill") => {
                json!({"job_id": self.long_job().await})
            }
            ("jobs" | "ssh", "job_list") => json!({"limit": 10}),
            ("jobs" | "ssh", "job_wait" | "follow_job") => {
                json!({"job_id": self.job, "timeout_ms": 5000, "poll_interval_ms": 100})
            }
            ("jobs" | "ssh", "job_logs_tail" | "tail_job") => {
                json!({"job_id": self.job, "lines": 20})
            }
            ("jobs" | "ssh", a) if a.starts_with("job_") => json!({"job_id": self.job}),
            ("artifacts", "list") => json!({"limit": 5}),
            ("artifacts", "get") => json!({"uri": self.artifact, "offset": 0, "max_bytes": 64}),
            ("artifacts", _) => json!({"uri": self.artifact, "max_bytes": 64}),
            ("runbook", "runbook_upsert") => json!({"name": "replay", "runbook": {
                "description": "replay", "inputs": ["who"],
                "steps": [{"id": "a", "tool": "mcp_state",
                           "args": {"action": "set", "key": "replay.rb", "value": "{{ input.who }}"}}]}}),
            ("runbook", "runbook_delete") => {
                let name = self.fresh("replay.scratch");
                self.call(
                    "runbook",
                    json!({"action": "upsert", "name": name, "runbook": {"description": "d",
                        "steps": [{"id": "a", "tool": "state", "args": {"action": "dump"}}]}}),
                )
                .await;
                json!({"name": name})
            }
            ("runbook", "runbook_get" | "runbook_compile") => json!({"name": "replay"}),
            ("runbook", "runbook_run") => json!({"name": "replay", "input": {"who": "me"}}),
            ("runbook", "runbook_list") => json!({}),
            ("runbook", _) => json!({"name": "replay", "dsl": "step a: state dump"}),
            ("intent", "execute") => json!({"intent": {"type": "http.check",
                "inputs": {"url": w.url("/hello"), "attempts": 1}}, "apply": false}),
            ("intent", _) => json!({"intent": {"type": "repo.snapshot", "inputs": {}}}),
            ("audit", "audit_list" | "audit_tail") => json!({"limit": 5}),
            ("audit", _) => json!({}),
            ("pipeline", "run") => json!({"flow": "http_to_postgres",
                "http": {"url": format!("{}/data", w.data.base_url())},
                "postgres": {"profile_name": "db", "table": "t"}, "format": "csv"}),
            ("pipeline", "deploy_smoke") => json!({"target": "box", "local_path": w.at("read.txt"),
                "remote_path": w.at("smoke.txt"), "url": w.url("/hello")}),
            ("pipeline", _) => json!({}),
            ("local", "exec") => json!({"command": "echo", "args": ["replay"]}),
            ("local", "batch") => {
                json!({"commands": [{"command": "true"}, {"command": "echo ok"}]})
            }
            ("local", "fs_read" | "fs_stat") => json!({"path": w.at("read.txt")}),
            ("local", "fs_write") => {
                json!({"path": w.at("written.txt"), "content": "x", "overwrite": true})
            }
            ("local", "fs_list") => json!({"path": w.at("")}),
            ("local", "fs_mkdir") => json!({"path": w.at(&self.fresh("made"))}),
            ("local", "fs_rm") => json!({"path": w.at("written.txt")}),
            ("repo", "render") => json!({"render_type": "kustomize", "overlay": "deploy"}),
            ("repo", "apply_patch") => {
                let file = self.fresh("patched");
                json!({"apply": true, "patch": format!(
                    "diff --git a/{file}.txt b/{file}.txt\nnew file mode 100644\n--- /dev/null\n\
                     +++ b/{file}.txt\n@@ -0,0 +1 @@\n+patched\n")})
            }
            ("repo", "git_commit") => {
                // The replaced tool committed what is staged (`git commit -m`), as infra does.
                git(w.repo.path(), &["add", "-A"]);
                json!({"message": "replay commit", "apply": true})
            }
            ("repo", "git_revert") => {
                let file = self.fresh("to-revert");
                write(w.repo.path(), &format!("{file}.txt"), "undo me\n");
                let sha = commit_all(w.repo.path(), "to be reverted");
                json!({"sha": sha, "apply": true})
            }
            ("repo", "git_push") => json!({"remote": "origin", "branch": "main", "apply": true}),
            ("repo", "exec") => json!({"command": "git", "args": ["status"]}),
            ("repo", _) => json!({}),
            ("psql", a) => psql(a),
            ("ssh", a) => ssh(w, a),
            ("http", a) => http(w, a),
            _ => json!({}),
        }
    }
}

/// A Postgres call by the replaced tool's field names (`profile_name`, `data`, `rows`,
/// `filters`, `file_path`), on table `t` (`a` int, `b` text).
fn psql(action: &str) -> Value {
    let mut v = json!({"profile_name": "db"});
    let set = |v: &mut Value, extra: Value| {
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
    };
    match action {
        "query" => set(
            &mut v,
            json!({"sql": "select a, b from t where a = $1", "params": [1]}),
        ),
        "batch" | "transaction" => set(
            &mut v,
            json!({"statements": [{"sql": "select count(*) from t"}, {"sql": "select 1"}]}),
        ),
        "insert" => set(&mut v, json!({"table": "t", "data": {"a": 4, "b": "four"}})),
        "insert_bulk" => set(
            &mut v,
            json!({"table": "t", "rows": [{"a": 5, "b": "five"}, {"a": 6, "b": "six"}]}),
        ),
        "update" => set(
            &mut v,
            json!({"table": "t", "data": {"b": "uno"}, "filters": {"a": 1}}),
        ),
        "delete" => set(&mut v, json!({"table": "t", "filters": {"a": 6}})),
        "select" => set(
            &mut v,
            json!({"table": "t", "filters": {"a": 2}, "columns": ["a", "b"], "limit": 10}),
        ),
        "count" | "exists" => set(&mut v, json!({"table": "t", "filters": {"a": 2}})),
        "export" => set(
            &mut v,
            json!({"table": "t", "format": "csv", "file_path": "/tmp/t.csv"}),
        ),
        "catalog_columns" => set(&mut v, json!({"table": "t"})),
        "profile_upsert" => set(
            &mut v,
            json!({"connection": {"host": "127.0.0.1", "database": "app"}}),
        ),
        _ => {}
    }
    v
}

/// An SSH call by the replaced tool's field names (`profile_name` for the machine,
/// `remote_path`, `local_path`).
fn ssh(w: &World, action: &str) -> Value {
    let mut v = json!({"profile_name": "box"});
    let extra = match action {
        "exec" | "exec_detached" | "exec_follow" => json!({"command": "echo replay"}),
        "batch" => json!({"commands": [{"command": "true"}, {"command": "uname"}]}),
        "sftp_list" => json!({"path": w.at("")}),
        "sftp_exists" => json!({"path": w.at("remote.txt")}),
        "sftp_download" => {
            json!({"remote_path": w.at("remote.txt"), "local_path": w.at("downloaded.txt")})
        }
        "sftp_upload" | "deploy_file" => json!({"local_path": w.at("read.txt"),
            "remote_path": w.at("uploaded.txt"), "overwrite": true}),
        "authorized_keys_add" => json!({"public_key": "ssh-ed25519 AAAA replay"}),
        "profile_upsert" => json!({"connection": {"host": "127.0.0.1"}}),
        _ => json!({}),
    };
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    v
}

/// An HTTP call by the replaced tool's field names.
fn http(w: &World, action: &str) -> Value {
    match action {
        "request" => json!({"method": "POST", "url": w.url("/echo"), "body": {"hello": "world"}}),
        "paginate" => json!({"url": w.url("/items?per_page=2&total=5")}),
        "download" => json!({"url": w.url("/bytes?n=4096")}),
        "check" | "smoke_http" => {
            json!({"base_url": w.http.base_url(), "path": "/hello", "expect_code": 200})
        }
        _ => json!({"profile_name": "api"}),
    }
}

/// The first `artifact://` URI anywhere in `v`.
fn first_artifact(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.starts_with("artifact://") => Some(s.clone()),
        Value::Array(a) => a.iter().find_map(first_artifact),
        Value::Object(m) => m.values().find_map(first_artifact),
        _ => None,
    }
}

/// How an answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Ok,
    Dropped,
    NotGranted,
    Allowed,
}

/// Classifies one answer; `Err` describes an answer that is none of the classes.
fn classify(tool: &str, action: &str, err: bool, out: &Value) -> Result<Class, String> {
    let infra_tool = out["tool"].as_str().unwrap_or_default();
    if !err && out["ok"] == true {
        return Ok(Class::Ok);
    }
    let kind = out["error"]["kind"].as_str().unwrap_or_default();
    let message = out["error"]["message"].as_str().unwrap_or_default();
    if let Some((_, rest)) = message.split_once("is not provided by infra: ")
        && let Some(why) = rest.strip_suffix(" (docs/compat.md lists what changed)")
    {
        // Dropped on purpose: the reason given is the one docs/compat.md lists.
        return if COMPAT_MD.contains(why) {
            Ok(Class::Dropped)
        } else {
            Err(format!(
                "{tool} {action}: dropped for a reason docs/compat.md does not list: {why}"
            ))
        };
    }
    if kind == "denied"
        && let Some((_, _, grant)) = NOT_GRANTED
            .iter()
            .find(|(t, a, _)| *t == infra_tool && *a == action)
    {
        return if message.contains(grant) {
            Ok(Class::NotGranted)
        } else {
            Err(format!("denied without naming `{grant}`: {message}"))
        };
    }
    if ALLOWED
        .iter()
        .any(|(t, a, k, _)| *t == infra_tool && *a == action && *k == kind)
    {
        return Ok(Class::Allowed);
    }
    Err(format!("{tool} {action}: {kind}: {message}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_and_action_of_the_replaced_catalog_runs_against_live_backends() {
    let started = std::time::Instant::now();
    let catalog: Vec<Value> =
        serde_json::from_str(include_str!("../data/seed_tool_catalog.json")).unwrap();
    let w = World::start().await;
    let mcp = w.serve().await;

    // A finished background job, and an artifact from a download that spilled to the store.
    let out = mcp
        .call(
            "ssh",
            json!({"action": "exec_detached", "target": "box", "command": "echo replay; sleep 0.2"}),
        )
        .await
        .1;
    let job = text(&out, "/job/id").to_string();
    let out = mcp
        .call(
            "http",
            json!({"action": "download", "url": w.url("/text?n=20000")}),
        )
        .await
        .1;
    let artifact = first_artifact(&out).unwrap_or_else(|| panic!("no artifact in {out}"));
    let mut r = Replay {
        w: &w,
        mcp: &mcp,
        job,
        artifact,
        n: 0,
    };

    let mut counts = [0usize; 4];
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut answers = String::new();
    for t in &catalog {
        let tool = text(t, "/name");
        let actions: Vec<String> = t["actions"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_else(|| vec![String::new()]);
        for action in actions {
            let mut args = r.sample(tool, &action).await;
            if !action.is_empty() {
                args["action"] = json!(action);
            }
            // The replaced repo tool named the repository by an absolute path on every call.
            if tool == "mcp_repo" {
                args["repo_root"] = json!(w.repo.path());
            }
            let (err, out) = mcp.call(tool, args.clone()).await;
            calls += 1;
            answers.push_str(&out.to_string());
            match classify(tool, &action, err, &out) {
                Ok(c) => counts[c as usize] += 1,
                Err(why) => failures.push(format!("{why}\n    sent {args}")),
            }
        }
    }
    eprintln!(
        "{} ok, {} dropped, {} not granted, {} allowed ({calls} calls, {} failed, {:.1} s)",
        counts[Class::Ok as usize],
        counts[Class::Dropped as usize],
        counts[Class::NotGranted as usize],
        counts[Class::Allowed as usize],
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(calls > 150, "{calls} calls");
    assert!(
        failures.is_empty(),
        "{} calls failed for a reason that is not theirs:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The replay's `repo_root` lay in the root `workspace`; one in no root of the policy is
    // refused, naming the field, the fix and the docs — never reached.
    let outside = tempfile::tempdir().unwrap();
    let sent = json!({"action": "repo_info", "repo_root": outside.path()});
    let (err, out) = mcp.call("mcp_repo", sent).await;
    let m = out["error"]["message"].as_str().unwrap_or_default();
    assert!(
        err && m.contains("`repo_root` is not provided by infra")
            && m.contains("[roots]")
            && m.contains("docs/compat.md"),
        "{out}"
    );
    let audited = infra_tests::audit_records(w.home.path());
    let meant = audited
        .iter()
        .find(|r| r["kind"] == "begin" && r["sent"]["names"]["repo_root"].is_object())
        .expect("a begin record keeps the repo_root sent");
    assert_eq!(meant["args"]["root"], "workspace", "{meant}");

    // The database password (a canary) reached no answer and nothing in the state directory.
    assert!(
        !answers.contains(&w.password),
        "an answer shows the password"
    );
    assert!(
        !contains(&w.home.all_bytes(), &w.password),
        "the state directory holds the password"
    );

    // The answers were real work on the backends.
    assert!(w.sshd.accepted() > 0, "the ssh calls reached sshd");
    assert_eq!(
        w.pg.psql("app", "SELECT count(*) FROM t WHERE a IN (4, 5, 10, 11)"),
        "6",
        "insert (×3 tools), and no load without apply"
    );
    assert_eq!(
        git(w.remote.path(), &["rev-parse", "main"]).trim(),
        head(w.repo.path()),
        "git_push pushed the replay's commits"
    );
}
