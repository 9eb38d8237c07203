//! Secret canaries across every action: each secret slot infra has (an ssh key's passphrase, an
//! ssh key given by reference, an ssh password, a postgres profile password, an http bearer
//! token, basic-auth password and header value) holds a unique value; every action of ssh, jobs,
//! psql and http runs through one `infra serve` session, many of them with commands, queries or
//! server responses that echo the values back; then no canary may appear in any MCP result,
//! notification, stderr line (`INFRA_LOG=debug`) or byte of the state directory.
//!
//! Real backends: an sshd and a PostgreSQL started by the harness, the host's fixture HTTP
//! server. docker, smartctl and journalctl are the harness's stand-ins ([`ToolStubs`]), fed
//! data that contains the canaries, so the monitoring actions echo them too.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use infra_tests::fixture_server::FixtureServer;
use infra_tests::pg::PgServer;
use infra_tests::sshd::{Sshd, ToolStubs, password_login, unique};
use infra_tests::{Home, Mcp, contains, text};
#[allow(deprecated)]
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProgressNotificationParam};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

/// What the host replaces a known secret with (host/src/redact.rs).
const REDACTED: &str = "[REDACTED]";

/// The environment variables the `env:` references of targets.json and profiles.json name.
const KEY_VAR: &str = "INFRA_CANARY_SSH_KEY";
const SSH_PASSWORD_VAR: &str = "INFRA_CANARY_SSH_PASSWORD";
const WRONG_PASSWORD_VAR: &str = "INFRA_CANARY_SSH_WRONG_PASSWORD";
const PG_PASSWORD_VAR: &str = "INFRA_CANARY_PG_PASSWORD";
const HEADER_VAR: &str = "INFRA_CANARY_HTTP_HEADER";

/// An MCP client that records every progress and logging notification it receives.
#[derive(Clone)]
struct Recorder {
    notes: Arc<Mutex<Vec<Value>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("infra-canary-tests", "0.0.0"),
        )
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let v = serde_json::to_value(&params).expect("progress serializes");
        self.notes.lock().unwrap().push(json!({"progress": v}));
    }

    // Logging is deprecated in MCP and infra does not advertise it, but should a log message
    // ever be sent it must be as clean as the rest.
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let v = serde_json::to_value(&params).expect("log message serializes");
        self.notes.lock().unwrap().push(json!({"log": v}));
    }
}

/// One `infra serve` session; keeps the text of everything the server answered.
struct Session {
    client: Mcp<Recorder>,
    notes: Arc<Mutex<Vec<Value>>>,
    /// Every result, by call (`tool {args}`), as the structured JSON and the text mirror.
    seen: Vec<(String, String)>,
    calls: usize,
    /// Positive controls that did not hold, reported with the leaks at the end so one run
    /// shows every problem.
    problems: Vec<String>,
}

impl Session {
    /// `tools/call`: (is_error, structuredContent).
    async fn call(&mut self, tool: &str, args: Value) -> (bool, Value) {
        let result = self.client.result(tool, args.clone()).await;
        self.calls += 1;
        // Short names in the report: the arguments themselves carry the canaries.
        let name = format!(
            "{tool} {}{}",
            args["action"].as_str().unwrap_or_default(),
            args["target"]
                .as_str()
                .map(|t| format!(" on {t}"))
                .unwrap_or_default()
        );
        for c in &result.content {
            if let Some(t) = c.as_text() {
                self.seen.push((name.clone(), t.text.clone()));
            }
        }
        let structured = result
            .structured_content
            .expect("every result carries structuredContent");
        self.seen.push((name, structured.to_string()));
        (result.is_error == Some(true), structured)
    }

    /// Records a problem unless `got` equals `want`.
    fn expect_eq(&mut self, what: &str, got: &Value, want: impl Into<Value>) {
        let want = want.into();
        if *got != want {
            self.problems
                .push(format!("{what}: got {got}, want {want}"));
        }
    }

    /// A call that must succeed.
    async fn ok(&mut self, tool: &str, args: Value) -> Value {
        let (err, out) = self.call(tool, args.clone()).await;
        assert!(!err, "{tool} {args} failed: {out}");
        out
    }

    /// A call that must fail.
    async fn fails(&mut self, tool: &str, args: Value) -> Value {
        let (err, out) = self.call(tool, args.clone()).await;
        assert!(err, "{tool} {args} should have failed: {out}");
        out
    }
}

/// Every secret value of the run, by slot.
struct Canaries {
    passphrase: String,
    wrong_passphrase: String,
    /// A line of the by-reference private key's base64 body (the one holding the ed25519 seed).
    key_line: String,
    /// The whole private key text given by reference.
    key_text: String,
    /// The right and a wrong ssh password; `None` when not running as root (no user can be
    /// given a password, so the slot is not configured).
    ssh_password: Option<(String, String)>,
    pg_password: String,
    bearer: String,
    basic_password: String,
    /// What actually travels for basic auth: base64 of `user:password`.
    basic_encoded: String,
    header: String,
}

impl Canaries {
    /// Every canary with its slot name.
    fn all(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![
            ("ssh key passphrase", self.passphrase.as_str()),
            ("wrong ssh key passphrase", self.wrong_passphrase.as_str()),
            ("ssh private key (by reference)", self.key_line.as_str()),
            ("postgres password", self.pg_password.as_str()),
            ("http bearer token", self.bearer.as_str()),
            ("http basic password", self.basic_password.as_str()),
            (
                "http basic credential (encoded)",
                self.basic_encoded.as_str(),
            ),
            ("http header value", self.header.as_str()),
        ];
        if let Some((right, wrong)) = &self.ssh_password {
            v.push(("ssh password", right.as_str()));
            v.push(("wrong ssh password", wrong.as_str()));
        }
        v
    }

    /// The canaries registered with the host as whole values (all but the key line, which is
    /// registered as part of the whole key), space-separated: what commands echo back.
    fn echoable(&self) -> String {
        self.all()
            .into_iter()
            .filter(|(slot, _)| !slot.starts_with("ssh private key"))
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// [`Canaries::echoable`] as the host should return it: each replaced by [`REDACTED`].
    fn echoed_redacted(&self) -> String {
        vec![REDACTED; self.all().len() - 1].join(" ")
    }
}

/// One line per canary found in `hay`: its slot and `place`.
fn leaked(canaries: &Canaries, hay: &[u8], place: &str) -> Vec<String> {
    canaries
        .all()
        .into_iter()
        .filter(|(_, v)| contains(hay, v))
        .map(|(slot, _)| format!("{slot} in {place}"))
        .collect()
}

/// The 4th line of an OpenSSH private key's base64 body: for an unencrypted ed25519 key it
/// carries the private seed, and appears nowhere public (the .pub file encodes the public key
/// at another alignment).
fn key_canary(key_text: &str) -> String {
    let body: Vec<&str> = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let line = body.get(3).expect("an OpenSSH key body of 4+ lines");
    assert!(line.len() >= 40, "a distinctive line: {line}");
    line.to_string()
}

/// A directory every SSH user can write to (the password user is not root).
fn world_writable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Runs every ssh action on `target` (and every jobs action on its jobs), with commands and
/// data echoing the canaries. `work` is a directory the target's user may write in.
async fn every_ssh_action(
    s: &mut Session,
    c: &Canaries,
    target: &str,
    work: &Path,
    leaked_key: &Path,
) {
    let echo = c.echoable();
    let dir = work.join(target);
    let home = dir.join("home");
    let file = dir.join("files").join("secret.txt");
    let t = |v: Value| {
        let mut v = v;
        v["target"] = json!(target);
        v
    };
    let call = |a: &str| format!("{target}: {a}");

    // exec: the canaries echoed on stdout and stderr come back redacted, and so does the
    // whole private key printed from a file.
    let out = s
        .ok(
            "ssh",
            t(json!({"action": "exec", "command": format!("echo '{echo}'; echo '{echo}' >&2")})),
        )
        .await;
    let want = format!("{}\n", c.echoed_redacted());
    s.expect_eq(
        &call("exec stdout"),
        &out["command"]["stdout"],
        want.as_str(),
    );
    s.expect_eq(
        &call("exec stderr"),
        &out["command"]["stderr"],
        want.as_str(),
    );
    let out = s
        .ok(
            "ssh",
            t(json!({"action": "exec", "command": format!("cat {}", leaked_key.display())})),
        )
        .await;
    s.expect_eq(
        &call("cat key"),
        &out["command"]["stdout"],
        format!("{REDACTED}\n"),
    );
    // Through stdin, env, a pty, and spilled to an artifact beyond max_output.
    let out = s
        .ok(
            "ssh",
            t(
                json!({"action": "exec", "command": "cat; printf '%s\\n' \"$CANARY\"",
                     "stdin": format!("{echo}\n"), "env": {"CANARY": echo}}),
            ),
        )
        .await;
    s.expect_eq(
        &call("stdin/env"),
        &out["command"]["stdout"],
        format!("{want}{want}"),
    );
    s.ok(
        "ssh",
        t(json!({"action": "exec", "command": format!("echo '{echo}'"), "pty": true})),
    )
    .await;
    let out = s
        .ok(
            "ssh",
            t(json!({"action": "exec", "command": format!("head -c 5000 /dev/zero | tr '\\0' x; echo '{echo}'"),
                     "max_output": 100})),
        )
        .await;
    assert_eq!(
        out["command"]["stdout_truncated"],
        true,
        "{}",
        call("spill")
    );
    // A failure whose message quotes the agent's input.
    s.ok(
        "ssh",
        t(json!({"action": "exec", "command": "true", "cwd": format!("/nonexistent/{echo}")})),
    )
    .await;
    s.ok(
        "ssh",
        t(json!({"action": "batch", "commands": [format!("echo '{echo}'"), "false", format!("echo '{echo}' >&2")],
                 "continue_on_error": true})),
    )
    .await;
    s.ok("ssh", t(json!({"action": "system_info"}))).await;
    let out = s.ok("ssh", t(json!({"action": "check_host"}))).await;
    s.expect_eq(&call("check_host reachable"), &out["reachable"], true);

    // SFTP: a file holding the canaries, named after one, listed, downloaded into an artifact
    // and uploaded again from it; deploy_file with a restart command echoing them.
    s.ok(
        "ssh",
        t(json!({"action": "sftp_upload", "path": file, "content": format!("{echo}\n"), "mkdirs": true})),
    )
    .await;
    let named = dir.join("files").join(format!("{}.txt", c.pg_password));
    s.ok(
        "ssh",
        t(
            json!({"action": "sftp_upload", "path": named, "content_base64":
                 base64::engine::general_purpose::STANDARD.encode(&c.key_text)}),
        ),
    )
    .await;
    s.ok(
        "ssh",
        t(json!({"action": "sftp_list", "path": dir.join("files")})),
    )
    .await;
    s.ok("ssh", t(json!({"action": "sftp_stat", "path": named})))
        .await;
    let out = s
        .ok("ssh", t(json!({"action": "sftp_download", "path": file})))
        .await;
    let uri = text(&out, "/artifact/uri").to_string();
    s.ok("ssh", t(json!({"action": "sftp_download", "path": named})))
        .await;
    s.ok(
        "ssh",
        t(json!({"action": "sftp_upload", "path": dir.join("files").join("copy.txt"), "content_artifact": uri})),
    )
    .await;
    let out = s
        .ok(
            "ssh",
            t(
                json!({"action": "deploy_file", "path": dir.join("app").join("app.conf"),
                     "content": format!("password = {echo}\n"), "mkdirs": true,
                     "restart_command": format!("echo '{echo}'; echo '{echo}' >&2")}),
            ),
        )
        .await;
    s.expect_eq(&call("deploy_file changed"), &out["changed"], true);

    // exec_detached and every jobs action on its job.
    let out = s
        .ok(
            "ssh",
            t(json!({"action": "exec_detached", "command": format!("sleep 2; echo '{echo}'; echo '{echo}' >&2"),
                     "env": {"HOME": home, "CANARY": echo}})),
        )
        .await;
    let id = text(&out, "/job/id").to_string();
    s.ok("jobs", json!({"action": "status", "id": id})).await;
    s.ok("jobs", json!({"action": "list"})).await;
    let out = s
        .ok(
            "jobs",
            json!({"action": "wait", "id": id, "timeout_ms": 20000}),
        )
        .await;
    s.expect_eq(&call("job state after wait"), &out["state"], "exited");
    s.expect_eq(&call("job exit code"), &out["exit_code"], 0);
    let out = s.ok("jobs", json!({"action": "logs", "id": id})).await;
    s.expect_eq(&call("job logs"), &out["stdout"], want.as_str());
    s.ok(
        "jobs",
        json!({"action": "logs", "id": id, "full": true, "tail_bytes": 10}),
    )
    .await;
    let out = s
        .ok(
            "ssh",
            t(
                json!({"action": "exec_detached", "command": format!("sleep 600; echo '{echo}'"),
                     "env": {"HOME": home}}),
            ),
        )
        .await;
    let id = text(&out, "/job/id").to_string();
    let out = s
        .ok(
            "jobs",
            json!({"action": "cancel", "id": id, "grace_ms": 500}),
        )
        .await;
    s.expect_eq(&call("cancelled job state"), &out["state"], "cancelled");
    s.ok("jobs", json!({"action": "logs", "id": id, "full": true}))
        .await;

    // Monitoring: the stand-ins' data holds the canaries too.
    s.ok("ssh", t(json!({"action": "containers", "inspect": true})))
        .await;
    let out = s
        .ok(
            "ssh",
            t(json!({"action": "container_logs", "container": "leaky", "since": "1h"})),
        )
        .await;
    s.expect_eq(
        &call("container_logs"),
        &out["data"]["lines"][0]["line"],
        c.echoed_redacted(),
    );
    s.ok("ssh", t(json!({"action": "metrics"}))).await;
    s.ok("ssh", t(json!({"action": "disk_health"}))).await;
    let out = s
        .ok(
            "ssh",
            t(json!({"action": "logs", "unit": "leaky.service", "priority": "info", "lines": 10})),
        )
        .await;
    s.expect_eq(
        &call("logs"),
        &out["data"]["entries"][0]["message"],
        c.echoed_redacted(),
    );
}

/// Every psql action, with the password stored in, bound to and echoed from the database.
async fn every_psql_action(s: &mut Session, c: &Canaries) {
    let echo = c.echoable();
    let q = |sql: String| json!({"action": "query", "profile": "db", "sql": sql});
    s.ok(
        "psql",
        q("CREATE TABLE secrets (id serial PRIMARY KEY, v text)".into()),
    )
    .await;
    s.ok(
        "psql",
        json!({"action": "insert", "profile": "db", "table": "secrets", "values": [{"v": c.pg_password}, {"v": echo}]}),
    )
    .await;
    let out = s
        .ok(
            "psql",
            json!({"action": "query", "profile": "db", "sql": "SELECT $1::text AS echoed", "params": [c.pg_password]}),
        )
        .await;
    s.expect_eq("psql query echo", &out["rows"][0]["echoed"], REDACTED);
    s.ok(
        "psql",
        q("SELECT current_setting('application_name'), current_user".into()),
    )
    .await;
    // A syntax error quoting the statement.
    s.fails("psql", q(format!("SELECT '{}' FRM secrets", c.pg_password)))
        .await;
    s.ok(
        "psql",
        json!({"action": "batch", "profile": "db", "statements": [{"sql": "SELECT v FROM secrets"}, {"sql": "SELECT $1::text", "params": [c.pg_password]}]}),
    )
    .await;
    s.ok(
        "psql",
        json!({"action": "transaction", "profile": "db", "statements": [{"sql": "SELECT v FROM secrets"}]}),
    )
    .await;
    s.ok(
        "psql",
        json!({"action": "select", "profile": "db", "table": "secrets", "where": {"v": c.pg_password}}),
    )
    .await;
    s.ok(
        "psql",
        json!({"action": "count", "profile": "db", "table": "secrets"}),
    )
    .await;
    let out = s
        .ok(
            "psql",
            json!({"action": "exists", "profile": "db", "table": "secrets", "where": {"v": c.pg_password}}),
        )
        .await;
    assert_eq!(out["value"], true, "{out}");
    s.ok(
        "psql",
        json!({"action": "export", "profile": "db", "table": "secrets"}),
    )
    .await;
    s.ok(
        "psql",
        json!({"action": "export", "profile": "db", "sql": "SELECT v, v AS again FROM secrets", "format": "jsonl"}),
    )
    .await;
    s.ok("psql", json!({"action": "tables", "profile": "db"}))
        .await;
    s.ok(
        "psql",
        json!({"action": "columns", "profile": "db", "table": "secrets"}),
    )
    .await;
    s.ok("psql", json!({"action": "database_info", "profile": "db"}))
        .await;
    s.ok(
        "psql",
        json!({"action": "explain", "profile": "db", "sql": format!("SELECT * FROM secrets WHERE v = '{}'", c.pg_password)}),
    )
    .await;
    s.ok(
        "psql",
        json!({"action": "update", "profile": "db", "table": "secrets", "set": {"v": echo}, "where": {"v": c.pg_password},
               "returning": ["v"]}),
    )
    .await;
    s.ok(
        "psql",
        json!({"action": "delete", "profile": "db", "table": "secrets", "all_rows": true, "returning": ["v"]}),
    )
    .await;
}

/// Every http action with each kind of injected credential, against endpoints that echo.
async fn every_http_action(s: &mut Session, c: &Canaries, server: &FixtureServer) {
    let echo = c.echoable();
    // The hostile endpoint sends the Authorization header back.
    for profile in ["api", "basic"] {
        let out = s
            .ok(
                "http",
                json!({"action": "request", "profile": profile, "url": "/reflect-auth"}),
            )
            .await;
        if !text(&out, "/json/you_sent").contains(REDACTED) {
            s.problems
                .push(format!("http {profile} reflect-auth not redacted: {out}"));
        }
        s.ok(
            "http",
            json!({"action": "request", "profile": profile, "url": "/reflect-auth", "response_type": "base64"}),
        )
        .await;
        s.ok(
            "http",
            json!({"action": "download", "profile": profile, "url": "/reflect-auth"}),
        )
        .await;
    }
    // Query, body and JSON echoed by the server.
    let out = s
        .ok(
            "http",
            json!({"action": "request", "profile": "keyed", "method": "POST", "url": "/echo",
                   "query": {"q": echo}, "body": echo}),
        )
        .await;
    assert_eq!(out["json"]["body"], c.echoed_redacted(), "http echo: {out}");
    s.ok(
        "http",
        json!({"action": "request", "profile": "api", "method": "POST", "url": "/echo",
               "json": {"password": c.bearer, "note": echo}, "headers": {"X-Echo": echo}}),
    )
    .await;
    s.ok(
        "http",
        json!({"action": "request", "profile": "api", "url": format!("/nope/{}", c.header)}),
    )
    .await;
    // check: healthy, and unhealthy with a problem quoting the text it looked for.
    let out = s
        .ok(
            "http",
            json!({"action": "check", "profile": "api", "url": "/echo", "query": {"q": c.bearer}, "contains": "query"}),
        )
        .await;
    assert_eq!(out["healthy"], true, "{out}");
    let out = s
        .ok(
            "http",
            json!({"action": "check", "profile": "basic", "url": "/hello", "contains": c.basic_password}),
        )
        .await;
    assert_eq!(out["healthy"], false, "{out}");
    let out = s
        .ok(
            "http",
            json!({"action": "paginate", "profile": "keyed", "url": "/items", "query": {"per_page": 10, "total": 25, "tag": echo}}),
        )
        .await;
    assert_eq!(out["items"].as_array().map(Vec::len), Some(25), "{out}");
    // The URL (with its query) also names the artifact in its stored description.
    s.ok(
        "http",
        json!({"action": "download", "profile": "keyed", "method": "POST", "url": "/echo",
               "query": {"q": echo}, "body": echo}),
    )
    .await;
    // The credentials really reached the server.
    let seen = server.seen();
    let has = |name: &str, value: &str| {
        seen.iter()
            .any(|r| r.headers.iter().any(|(k, v)| k == name && v == value))
    };
    assert!(has("authorization", &format!("Bearer {}", c.bearer)));
    assert!(has("authorization", &format!("Basic {}", c.basic_encoded)));
    assert!(has("x-api-key", &c.header));
}

#[tokio::test]
async fn no_canary_leaves_the_host_through_any_action() {
    // --- Secrets and backends ---
    let stubs = ToolStubs::install();
    let login = password_login();
    if let Err(why) = &login {
        eprintln!("secret_canaries: the ssh password slot is skipped: {why}");
    }
    let mut config = stubs.sshd_config();
    if login.is_ok() {
        config.push_str("PasswordAuthentication yes\n");
    }
    let sshd = Sshd::start_with(&config);
    let by_ref = sshd.authorize_new_key("client_byref");
    let key_text = std::fs::read_to_string(&by_ref).unwrap();
    let basic_password = unique("canary-http-basic");
    let c = Canaries {
        passphrase: sshd.passphrase.clone(),
        wrong_passphrase: unique("canary-wrong-passphrase"),
        key_line: key_canary(&key_text),
        key_text: key_text.clone(),
        ssh_password: login
            .as_ref()
            .ok()
            .map(|(_, p)| (p.clone(), unique("canary-wrong-ssh-password"))),
        pg_password: unique("canary-pg-password"),
        bearer: unique("canary-http-bearer"),
        basic_encoded: base64::engine::general_purpose::STANDARD
            .encode(format!("agent:{basic_password}")),
        basic_password,
        header: unique("canary-http-header"),
    };
    let echo = c.echoable();

    // Files the secrets come from live outside the state directory, as a user's would.
    let secrets = tempfile::tempdir().unwrap();
    let file_ref = |name: &str, value: &str| {
        let p = secrets.path().join(name);
        std::fs::write(&p, value).unwrap();
        format!("file:{}", p.display())
    };
    // The stand-ins' data echoes the canaries: a container log, a journal entry, a container.
    std::fs::write(
        stubs.dir().join("docker-logs-leaky.txt"),
        format!("2024-05-01T10:00:00.000000001Z {echo}\n"),
    )
    .unwrap();
    let mut journal = std::fs::read_to_string(stubs.dir().join("journal.jsonl")).unwrap();
    journal.push_str(
        &json!({"__REALTIME_TIMESTAMP": "1714557700000000", "PRIORITY": "6",
                "_SYSTEMD_UNIT": "leaky.service", "SYSLOG_IDENTIFIER": "leaky", "MESSAGE": echo,
                "DB_URL": format!("postgres://app:{}@db/app", c.pg_password)})
        .to_string(),
    );
    journal.push('\n');
    std::fs::write(stubs.dir().join("journal.jsonl"), journal).unwrap();
    let mut ps = std::fs::read_to_string(stubs.dir().join("docker-ps.jsonl")).unwrap();
    let leaky_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    ps.push_str(
        &json!({"ID": leaky_id, "Names": "leaky", "Image": "app:1", "State": "running",
                "Labels": format!("token={}", c.bearer), "Command": format!("\"run --password {echo}\"")})
        .to_string(),
    );
    ps.push('\n');
    std::fs::write(stubs.dir().join("docker-ps.jsonl"), ps).unwrap();
    let inspect_file = stubs.dir().join("docker-inspect.json");
    let mut inspect: Value =
        serde_json::from_str(&std::fs::read_to_string(&inspect_file).unwrap()).unwrap();
    inspect.as_array_mut().unwrap().push(json!({
        "Id": leaky_id, "Name": "/leaky",
        "Config": {"Env": [format!("PGPASSWORD={}", c.pg_password), format!("API_TOKEN={}", c.bearer), format!("ALL={echo}")]}
    }));
    std::fs::write(
        &inspect_file,
        serde_json::to_string_pretty(&inspect).unwrap(),
    )
    .unwrap();

    let pg = PgServer::start();
    pg.create_db("app", &c.pg_password);
    let server = FixtureServer::start().await.expect("fixture server");

    let home = Home::new();
    let mut targets = json!({
        "enc": sshd.target(true, Some(&file_ref("passphrase", &c.passphrase))),
        "enc_wrong": sshd.target(true, Some(&file_ref("wrong-passphrase", &c.wrong_passphrase))),
        "byref": {"host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
                  "key": format!("env:{KEY_VAR}"), "host_key": sshd.host_fingerprint},
    });
    if let Ok((user, _)) = &login {
        targets["pw"] = json!({"host": "127.0.0.1", "port": sshd.port, "user": user,
            "password": format!("env:{SSH_PASSWORD_VAR}"), "host_key": sshd.host_fingerprint});
        targets["pw_wrong"] = json!({"host": "127.0.0.1", "port": sshd.port, "user": user,
            "password": format!("env:{WRONG_PASSWORD_VAR}"), "host_key": sshd.host_fingerprint});
    }
    std::fs::write(home.path().join("targets.json"), targets.to_string()).unwrap();
    home.profiles(&json!({
        "db": {"type": "postgres", "host": "127.0.0.1", "port": pg.port, "user": "app",
               "database": "app", "password": format!("env:{PG_PASSWORD_VAR}")},
        "api": {"type": "http", "base_url": server.base_url(),
                "auth": {"type": "bearer", "token": file_ref("bearer", &c.bearer)}},
        "basic": {"type": "http", "base_url": server.base_url(),
                  "auth": {"type": "basic", "user": "agent", "password": file_ref("basic", &c.basic_password)}},
        "keyed": {"type": "http", "base_url": server.base_url(),
                  "auth": {"type": "header", "name": "x-api-key", "value": format!("env:{HEADER_VAR}")}},
    }));
    let mut env: Vec<(&str, String)> = vec![
        (KEY_VAR, c.key_text.clone()),
        (PG_PASSWORD_VAR, c.pg_password.clone()),
        (HEADER_VAR, c.header.clone()),
        ("INFRA_LOG", "debug".into()),
    ];
    if let Some((right, wrong)) = &c.ssh_password {
        env.push((SSH_PASSWORD_VAR, right.clone()));
        env.push((WRONG_PASSWORD_VAR, wrong.clone()));
    }

    // Where the targets write: every SSH user may, and the private key sits there in a file
    // any of them can print.
    let work = tempfile::tempdir().unwrap();
    world_writable(work.path());
    let leaked_key = work.path().join("leaked_key");
    std::fs::write(&leaked_key, &c.key_text).unwrap();
    std::fs::set_permissions(&leaked_key, std::fs::Permissions::from_mode(0o644)).unwrap();

    // --- One session: `infra serve`, its stderr kept by the harness ---
    let notes = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        notes: notes.clone(),
    };
    let client = home
        .mcp_as(recorder, |cmd| {
            for (k, v) in &env {
                cmd.env(k, v);
            }
        })
        .await;
    let mut s = Session {
        client,
        notes,
        seen: Vec::new(),
        calls: 0,
        problems: Vec::new(),
    };

    let mut ssh_targets = vec!["enc", "byref"];
    if login.is_ok() {
        ssh_targets.push("pw");
    }
    for target in &ssh_targets {
        every_ssh_action(&mut s, &c, target, work.path(), &leaked_key).await;
    }
    // Wrong credentials: errors that say what is wrong without the values.
    let out = s
        .fails(
            "ssh",
            json!({"action": "exec", "target": "enc_wrong", "command": "true"}),
        )
        .await;
    assert!(text(&out, "/error/message").contains("passphrase"), "{out}");
    if login.is_ok() {
        let out = s
            .fails(
                "ssh",
                json!({"action": "exec", "target": "pw_wrong", "command": "true"}),
            )
            .await;
        assert!(
            text(&out, "/error/message").contains("refused to authenticate"),
            "{out}"
        );
    }
    every_psql_action(&mut s, &c).await;
    every_http_action(&mut s, &c, &server).await;

    // The host tools over what was stored: every artifact read whole, the audit log listed.
    let out = s
        .ok("artifacts", json!({"action": "list", "limit": 500}))
        .await;
    let uris: Vec<String> = out["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| text(i, "/uri").to_string())
        .collect();
    assert!(uris.len() >= 10, "artifacts were stored: {out}");
    for uri in &uris {
        s.ok(
            "artifacts",
            json!({"action": "get", "uri": uri, "length": 262144}),
        )
        .await;
        s.ok("artifacts", json!({"action": "head", "uri": uri}))
            .await;
        s.ok("artifacts", json!({"action": "tail", "uri": uri}))
            .await;
    }
    let calls = s.calls as u64;
    // Large enough to be spilled to an artifact: the state directory check reads it.
    s.ok("audit", json!({"action": "list", "limit": 500})).await;
    s.ok("audit", json!({"action": "tail", "limit": 50})).await;
    let out = s.ok("audit", json!({"action": "verify"})).await;
    assert_eq!(out["valid"], true, "{out}");
    let out = s.ok("audit", json!({"action": "stats"})).await;
    assert!(
        out["total"].as_u64().unwrap() >= calls,
        "a record per call ({calls} calls): {out}"
    );
    let Session {
        client,
        notes,
        seen,
        mut problems,
        ..
    } = s;
    let notes = notes.lock().unwrap().clone();
    let stderr = client.close().await.into_bytes();

    // A one-shot `infra call` too: its output and stderr.
    let (err, out, call_stderr) = home.call_with(
        "ssh",
        &json!({"action": "exec", "target": "byref", "command": format!("echo '{echo}'; cat {}", leaked_key.display())}),
        |cmd| {
            for (k, v) in &env {
                cmd.env(k, v);
            }
        },
    );
    assert!(!err, "{out}");
    let want = format!("{}\n{REDACTED}\n", c.echoed_redacted());
    if out["command"]["stdout"] != want.as_str() {
        problems.push(format!("infra call exec: got {out}, want stdout {want:?}"));
    }

    // --- Positive controls ---
    if let Ok((user, _)) = &login {
        assert!(
            sshd.accepted_password(user) >= 1,
            "the password target logged in with its password:\n{}",
            sshd.log()
        );
    }
    assert!(
        notes.iter().any(|n| n.get("progress").is_some()),
        "progress notifications were recorded (jobs wait sends them): {notes:?}"
    );
    assert!(
        contains(&stderr, "DEBUG"),
        "INFRA_LOG=debug logged: {}",
        String::from_utf8_lossy(&stderr)
    );

    // --- No canary anywhere ---
    let mut leaks = Vec::new();
    for (call, output) in &seen {
        leaks.extend(leaked(
            &c,
            output.as_bytes(),
            &format!("the MCP result of {call}"),
        ));
    }
    leaks.extend(leaked(
        &c,
        serde_json::to_string(&notes).unwrap().as_bytes(),
        "an MCP notification",
    ));
    // Log lines differ in time and ids only: one report per kind of line, with an example.
    let mut kinds_seen = Vec::new();
    for line in String::from_utf8_lossy(&stderr).lines() {
        let kind: String = short(line)
            .split_whitespace()
            .skip(1)
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
            .replace(|ch: char| ch.is_ascii_digit(), "");
        for l in leaked(&c, line.as_bytes(), "the stderr of infra serve") {
            if !kinds_seen.contains(&(l.clone(), kind.clone())) {
                kinds_seen.push((l.clone(), kind.clone()));
                leaks.push(format!("{l}, e.g. {}", short(line)));
            }
        }
    }
    leaks.extend(leaked(
        &c,
        out.to_string().as_bytes(),
        "`infra call` output",
    ));
    leaks.extend(leaked(&c, call_stderr.as_bytes(), "`infra call` stderr"));
    for file in state_files(home.path()) {
        let bytes = std::fs::read(&file).unwrap();
        leaks.extend(leaked(
            &c,
            &bytes,
            &format!("state file {}", file.display()),
        ));
    }
    // One line per slot and place is enough to find each path (the text mirror repeats every
    // result, and a leak path repeats across calls).
    let total = leaks.len();
    let mut distinct: Vec<String> = Vec::new();
    for l in leaks {
        if !distinct.contains(&l) {
            distinct.push(l);
        }
    }
    assert!(
        total == 0 && problems.is_empty(),
        "{total} leaks, {} distinct (the first 100):\n{}\n{} failed positive controls:\n{}",
        distinct.len(),
        distinct
            .iter()
            .take(100)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        problems.len(),
        problems
            .iter()
            .map(|p| short(p))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A log line or message for the report: terminal colour codes removed, at most 200 characters.
fn short(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // Skip to the end of the escape sequence (`ESC [ … m`).
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    if out.chars().count() > 200 {
        out = out.chars().take(200).collect::<String>() + "…";
    }
    out
}

/// Every file under `dir`.
fn state_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(state_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
