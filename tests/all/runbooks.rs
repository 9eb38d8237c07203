//! Runbooks and state through the real binary over MCP: every built-in compiles against the
//! tools as listed; a user-written runbook with `foreach`, `when`, `retry`/`until` and templated
//! step outputs runs against a real loopback HTTP server, each step an ordinary, audited call
//! under the run's trace id; a broken runbook is refused naming the step and the field; a write
//! step without `apply` from the run's inputs writes nothing; state keeps its scopes and scrubs
//! secrets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use infra_tests::{Home, Mcp, audit_records, canary, text};
use serde_json::{Value, json};

/// Root `work` and the http plugin granted loopback; state and runbook need no grant.
fn home() -> (Home, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let home = Home::new();
    home.policy(&format!(
        "[roots]\nwork = {{ path = \"{}\", read_only = false }}\n\n[plugin.http.http]\nhosts = [\"127.0.0.1:*\"]\n",
        work.path().display()
    ));
    (home, work)
}

/// A loopback server that answers "starting" to its first `failures` requests, then "ready"
/// (200 both: the http tool's own retries, which are for 5xx, do not hide the runbook's).
async fn flaky(failures: u32) -> (String, Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicU32::new(0));
    let s = seen.clone();
    let task = infra_tests::serve::http1(listener, move |_req| {
        let n = s.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let body = if n <= failures { "starting" } else { "ready" };
            Ok(Response::builder()
                .status(200)
                .body(Full::new(Bytes::from(body)))
                .unwrap())
        }
    });
    (url, seen, task)
}

async fn rb(mcp: &Mcp, args: Value) -> (bool, Value) {
    mcp.call("runbook", args).await
}

#[tokio::test]
async fn every_builtin_runbook_compiles_against_the_tools_as_listed() {
    let (home, _work) = home();
    let mcp = home.mcp().await;
    let (err, out) = rb(&mcp, json!({"action": "list"})).await;
    assert!(!err, "{out}");
    let names: Vec<String> = out["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text(r, "/name").to_string())
        .collect();
    for want in [
        "repo.snapshot",
        "gitops.release",
        "terraform.plan",
        "http.check",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    for n in &names {
        let (err, out) = rb(&mcp, json!({"action": "compile", "name": n})).await;
        assert!(!err, "{n}: {out}");
        assert_eq!(out["compiles"], true, "{n} does not compile: {out}");
    }
}

#[tokio::test]
async fn a_user_runbook_with_foreach_when_retry_and_step_outputs_runs_each_step_as_an_audited_call()
{
    let (home, _work) = home();
    let (url, seen, _server) = flaky(2).await;
    let mcp = home.mcp().await;
    let runbook = json!({
        "description": "collect names, wait for a service, remember how it went",
        "tags": ["test"],
        "inputs": {"names": {"type": "array", "required": true}, "url": {"type": "string", "required": true},
                   "loud": {"type": "boolean", "default": false}},
        "steps": [
            {"id": "names", "tool": "state",
             "args": {"action": "set", "key": "names", "value": "{{ input.names }}"}},
            {"id": "read", "tool": "state", "args": {"action": "get", "key": "names"}},
            {"id": "each", "tool": "state", "foreach": "{{ steps.read.value }}",
             "args": {"action": "set", "key": "seen.{{ item }}", "value": {"name": "{{ item }}", "n": "{{ steps.read.value }}"}}},
            {"id": "loud", "tool": "state", "when": {"path": "input.loud", "equals": true},
             "args": {"action": "set", "key": "loud", "value": true}},
            {"id": "poll", "tool": "http",
             "args": {"action": "check", "url": "{{ input.url }}", "contains": "ready"},
             "retry": {"max_attempts": 5, "delay_ms": 50, "until": {"path": "result.healthy", "equals": true}}},
            {"id": "after", "tool": "state",
             "args": {"action": "set", "key": "poll", "value": {"status": "{{ steps.poll.status }}", "trace": "{{ trace_id }}"}}}
        ]
    });
    let (err, out) = rb(
        &mcp,
        json!({"action": "upsert", "name": "test.collect", "runbook": runbook}),
    )
    .await;
    assert!(!err, "{out}");

    let (err, out) = rb(
        &mcp,
        json!({"action": "run", "name": "test.collect",
               "inputs": {"names": ["a", "b", "c"], "url": url}, "trace_id": "t-runbook-1"}),
    )
    .await;
    let out = home.whole(out);
    assert!(!err, "{out}");
    let outcomes: Vec<(String, String)> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (text(s, "/id").to_string(), text(s, "/outcome").to_string()))
        .collect();
    let want: Vec<(String, String)> = [
        ("names", "ok"),
        ("read", "ok"),
        ("each", "ok"),
        ("loud", "skipped"),
        ("poll", "ok"),
        ("after", "ok"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(outcomes, want, "{out}");
    assert_eq!(out["steps"][2]["calls"], 3, "one call per element: {out}");
    assert_eq!(
        out["steps"][4]["calls"], 3,
        "twice starting, then ready: {out}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 3);

    // The steps' effects, through the state tool itself; whole templates kept their types.
    let (_, dump) = mcp.call("state", json!({"action": "dump"})).await;
    let v = &dump["values"];
    assert_eq!(
        v["seen.b"],
        json!({"name": "b", "n": ["a", "b", "c"]}),
        "{dump}"
    );
    assert_eq!(v["poll"]["status"], 200, "{dump}");
    assert_eq!(v["poll"]["trace"], "t-runbook-1", "{dump}");
    assert!(v.get("loud").is_none());

    // Every step is its own audited call under the run's trace id.
    let steps: Vec<Value> = audit_records(home.path())
        .into_iter()
        .filter(|r| r["kind"] == "end" && r["trace_id"] == "t-runbook-1")
        .collect();
    let tools: Vec<&str> = steps.iter().map(|r| r["tool"].as_str().unwrap()).collect();
    assert_eq!(
        tools.iter().filter(|t| **t == "http").count(),
        3,
        "{tools:?}"
    );
    assert_eq!(
        tools.iter().filter(|t| **t == "state").count(),
        6,
        "{tools:?}"
    );
    assert_eq!(
        tools.last(),
        Some(&"runbook"),
        "the run's own record ends last: {tools:?}"
    );

    // A failing step stops the run, named; later steps are not run.
    let (err, out) = rb(
        &mcp,
        json!({"action": "run", "name": "test.collect",
               "inputs": {"names": ["x"], "url": "http://127.0.0.1:1/health"}}),
    )
    .await;
    assert!(err, "{out}");
    assert!(
        text(&out, "/error/message").contains("step `poll`"),
        "{out}"
    );
    let d = &out["error"]["detail"];
    assert_eq!(d["failed_step"], "poll", "{out}");
    assert_eq!(d["steps"][5]["outcome"], "not_run", "{out}");

    // Inputs are checked before anything runs.
    let (err, out) = rb(
        &mcp,
        json!({"action": "run", "name": "test.collect", "inputs": {"names": "a", "url": url}}),
    )
    .await;
    assert!(err);
    assert_eq!(out["error"]["field"], "inputs.names", "{out}");
    let (err, out) = rb(
        &mcp,
        json!({"action": "run", "name": "test.collect", "inputs": {"url": url, "nmes": []}}),
    )
    .await;
    assert!(err);
    assert_eq!(out["error"]["field"], "inputs.nmes", "{out}");
}

#[tokio::test]
async fn a_broken_runbook_is_refused_naming_the_step_and_the_field() {
    let (home, _work) = home();
    let mcp = home.mcp().await;
    let broken = json!({
        "description": "broken",
        "inputs": ["key"],
        "steps": [
            {"id": "ok", "tool": "state", "args": {"action": "get", "key": "{{ input.key }}"}},
            {"id": "typo", "tool": "state", "args": {"action": "get", "kye": "x"}},
            {"id": "later", "tool": "state", "args": {"action": "get", "key": "{{ steps.never.x }}"}},
            {"id": "tool", "tool": "stat", "args": {"action": "get", "key": "k"}}
        ]
    });
    let (err, out) = rb(
        &mcp,
        json!({"action": "compile", "runbook": broken.clone()}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["compiles"], false, "{out}");
    let problems = out["problems"].as_array().unwrap();
    let at = |step: &str| {
        problems
            .iter()
            .find(|p| p["step"] == step)
            .unwrap_or_else(|| panic!("no problem for step {step}: {out}"))
    };
    assert!(text(at("typo"), "/message").contains("kye"), "{out}");
    assert!(
        text(at("later"), "/message").contains("no earlier step `never`"),
        "{out}"
    );
    assert!(
        text(at("tool"), "/message").contains("did you mean `state`"),
        "{out}"
    );
    assert!(problems.iter().all(|p| p["step"] != "ok"), "{out}");

    let (err, out) = rb(
        &mcp,
        json!({"action": "upsert", "name": "broken", "runbook": broken}),
    )
    .await;
    assert!(err, "a runbook that does not compile is not stored: {out}");
    assert_eq!(out["error"]["field"], "steps.typo.args.kye", "{out}");
    let (_, list) = rb(&mcp, json!({"action": "list"})).await;
    assert!(!list.to_string().contains("\"broken\""), "{list}");
    let (err, out) = rb(&mcp, json!({"action": "run", "name": "brokn"})).await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "not-found", "{out}");
    let (err, out) = rb(&mcp, json!({"action": "delete", "name": "repo.snapshot"})).await;
    assert!(err);
    assert!(text(&out, "/error/message").contains("built-in"), "{out}");
}

#[tokio::test]
async fn state_keeps_its_scopes_across_servers_and_scrubs_known_secrets() {
    let (home, _work) = home();
    let secret = canary("state-secret");
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("token");
    std::fs::write(&file, &secret).unwrap();
    home.profiles(
        &json!({"svc": {"type": "http", "base_url": "http://127.0.0.1:1",
        "auth": {"type": "bearer", "token": format!("file:{}", file.display())}}}),
    );
    let mcp = home.mcp().await;
    for (scope, v) in [("session", 1), ("persistent", 2)] {
        let (err, out) = mcp
            .call(
                "state",
                json!({"action": "set", "key": "k", "value": v, "scope": scope}),
            )
            .await;
        assert!(!err, "{out}");
    }
    let (err, out) = mcp
        .call(
            "state",
            json!({"action": "set", "key": "leak", "value": {"note": format!("token is {secret}")}}),
        )
        .await;
    assert!(!err, "{out}");
    let (_, out) = mcp
        .call("state", json!({"action": "get", "key": "leak"}))
        .await;
    assert!(!out.to_string().contains(&secret), "{out}");
    let (err, out) = mcp
        .call(
            "state",
            json!({"action": "set", "key": "../etc", "value": 1}),
        )
        .await;
    assert!(err);
    assert_eq!(out["error"]["field"], "key", "{out}");
    mcp.close().await;

    // A new server: the session is gone, the persistent value stays.
    let mcp = home.mcp().await;
    let (_, s) = mcp
        .call("state", json!({"action": "get", "key": "k"}))
        .await;
    assert_eq!(s["found"], false, "{s}");
    let (_, p) = mcp
        .call(
            "state",
            json!({"action": "get", "key": "k", "scope": "persistent"}),
        )
        .await;
    assert_eq!(p["value"], 2, "{p}");
    assert!(!infra_tests::contains(&home.all_bytes(), &secret));
}

#[tokio::test]
async fn the_http_check_and_repo_snapshot_runbooks_run() {
    let (home, work) = home();
    let (url, seen, _server) = flaky(1).await;
    let repo = infra_tests::git::init(&work.path().join("app"));
    infra_tests::git::write(&repo, "a.txt", "a\n");
    infra_tests::git::commit_all(&repo, "first");
    infra_tests::git::write(&repo, "a.txt", "b\n");
    home.policy(&(std::fs::read_to_string(home.path().join("policy.toml")).unwrap()
        + "\n[programs]\ngit = \"/usr/bin/git\"\n\n[plugin.repo.exec]\nprograms = [\"git\"]\nroots = [\"work\"]\n\n[plugin.repo.fs]\nroots = [\"work\"]\n"));
    let mcp = home.mcp().await;
    let (err, out) = rb(
        &mcp,
        json!({"action": "run", "name": "http.check",
               "inputs": {"url": url, "contains": "ready", "delay_ms": 10}}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["steps"][0]["calls"], 2, "{out}");
    assert_eq!(out["steps"][0]["output"]["healthy"], true, "{out}");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let (err, out) = rb(
        &mcp,
        json!({"action": "run", "name": "repo.snapshot", "inputs": {"root": "work", "path": "app"}}),
    )
    .await;
    let out = home.whole(out);
    assert!(!err, "{out}");
    let snap = &out["steps"][0]["output"];
    assert_eq!(snap["diffstat"]["files_changed"], 1, "{out}");
    assert_eq!(snap["commits"][0]["subject"], "first", "{out}");
}

#[tokio::test]
async fn a_workspace_cannot_plant_runbooks_and_a_runbook_running_itself_stops() {
    let (home, work) = home();
    // infra started inside a checkout that ships a runbooks.json and a state.json.
    std::fs::write(
        work.path().join("runbooks.json"),
        json!({"planted": {"description": "x", "steps": [{"id": "a", "tool": "help", "args": {}}]}})
            .to_string(),
    )
    .unwrap();
    let dir = work.path().to_path_buf();
    let mcp = home
        .mcp_with(|c| {
            c.current_dir(&dir);
        })
        .await;
    let (_, out) = rb(&mcp, json!({"action": "get", "name": "planted"})).await;
    assert_eq!(out["error"]["kind"], "not-found", "{out}");

    let looping = json!({"description": "runs itself", "steps": [
        {"id": "again", "tool": "runbook", "args": {"action": "run", "name": "loop"}}]});
    let (err, out) = rb(
        &mcp,
        json!({"action": "upsert", "name": "loop", "runbook": looping}),
    )
    .await;
    assert!(!err, "{out}");
    let (err, out) = rb(&mcp, json!({"action": "run", "name": "loop"})).await;
    assert!(err, "{out}");
    assert!(out.to_string().contains("nest 4 deep"), "{out}");
    let runs = audit_records(home.path())
        .iter()
        .filter(|r| r["kind"] == "begin" && r["tool"] == "runbook")
        .count();
    assert!(runs <= 7, "bounded: {runs} runbook calls");
}

/// A runbook whose `poll` step retries a check that never holds: it runs until cancelled.
fn slow_runbook(url: &str) -> Value {
    json!({"description": "waits for a service that never gets ready",
    "steps": [
        {"id": "first", "tool": "state", "args": {"action": "set", "key": "first", "value": 1}},
        {"id": "poll", "tool": "http",
         "args": {"action": "check", "url": url, "contains": "ready"},
         "retry": {"max_attempts": 100, "delay_ms": 100, "until": {"path": "result.healthy", "equals": true}}},
        {"id": "after", "tool": "state", "args": {"action": "set", "key": "after", "value": 1}}
    ]})
}

#[tokio::test]
async fn a_run_is_a_job_listed_at_its_step_cancelled_from_another_call_and_waited_for() {
    use infra_tests::progress::{Era, connect};
    let (home, _work) = home();
    let (never, _, _server) = flaky(u32::MAX).await;
    let (ready, _, _server2) = flaky(0).await;
    let (mcp, progress) = connect(&home, Era::Initialize).await;
    let (err, out) = mcp
        .call(
            "runbook",
            json!({"action": "upsert", "name": "test.slow", "runbook": slow_runbook(&never)}),
        )
        .await;
    assert!(!err, "{out}");

    // The run goes on in one call; a second call finds it in `jobs`, at its step, and stops it.
    let run = mcp.call(
        "runbook",
        json!({"action": "run", "name": "test.slow", "trace_id": "t-slow", "timeout_ms": 60000}),
    );
    let other =
        async {
            let mut found = None;
            for _ in 0..100 {
                let (err, list) = mcp.call("jobs", json!({"action": "list"})).await;
                assert!(!err, "{list}");
                if let Some(r) = list["items"].as_array().unwrap().iter().find(|i| {
                    i["kind"] == "runbook" && i["step"] == "poll" && i["state"] == "running"
                }) {
                    found = Some(r.clone());
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let listed = found.expect("the running run is listed at its step");
            assert_eq!(listed["runbook"], "test.slow", "{listed}");
            assert_eq!(listed["trace_id"], "t-slow", "{listed}");
            assert_eq!(listed["steps_done"], 1, "{listed}");
            let id = text(&listed, "/id").to_string();
            let (err, waited) = mcp
                .call(
                    "jobs",
                    json!({"action": "wait", "id": id, "timeout_ms": 3000}),
                )
                .await;
            assert!(!err, "{waited}");
            assert_eq!(waited["done"], false, "still running: {waited}");
            assert!(waited["hint"].is_string(), "{waited}");
            let (err, cancelled) = mcp
                .call("jobs", json!({"action": "cancel", "id": id}))
                .await;
            assert!(!err, "{cancelled}");
            assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
            id
        };
    let ((err, out), id) = tokio::join!(run, other);
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "cancelled", "{out}");
    assert!(text(&out, "/error/message").contains(&id), "{out}");
    assert_eq!(out["error"]["detail"]["step"], "poll", "{out}");

    // Nothing after the cancelled step ran, and the server keeps serving.
    let (_, after) = mcp
        .call("state", json!({"action": "get", "key": "after"}))
        .await;
    assert_eq!(after["found"], false, "{after}");
    let (_, status) = mcp
        .call("jobs", json!({"action": "status", "id": id}))
        .await;
    assert_eq!(status["state"], "cancelled", "{status}");
    let (_, again) = mcp
        .call("jobs", json!({"action": "cancel", "id": id}))
        .await;
    assert_eq!(again["already_finished"], true, "{again}");

    // The client saw each step, with the run's id to cancel it by.
    let seen: Vec<String> = progress
        .lock()
        .unwrap()
        .iter()
        .filter_map(|p| p.message.clone())
        .collect();
    assert!(
        seen.iter()
            .any(|m| m.contains(&format!("test.slow ({id}): step poll"))),
        "{seen:?}"
    );

    // Every call the run made has its end record, the cancelled one included.
    infra_tests::wait_for("the cancelled step's end record", || {
        let records = audit_records(home.path());
        let of = |kind: &str| {
            records
                .iter()
                .filter(|r| r["kind"] == kind && r["trace_id"] == "t-slow")
                .count()
        };
        of("begin") == of("end")
    })
    .await;

    // A run that ends: its answer names its id, and `wait` sees it succeeded.
    let (err, out) = mcp
        .call(
            "runbook",
            json!({"action": "run", "name": "http.check", "inputs": {"url": ready, "contains": "ready"}}),
        )
        .await;
    assert!(!err, "{out}");
    let id = text(&out, "/run_id").to_string();
    let (_, waited) = mcp.call("jobs", json!({"action": "wait", "id": id})).await;
    assert_eq!(waited["done"], true, "{waited}");
    assert_eq!(waited["state"], "succeeded", "{waited}");
    assert_eq!(waited["steps_done"], waited["steps"], "{waited}");
    let (err, logs) = mcp.call("jobs", json!({"action": "logs", "id": id})).await;
    assert!(err, "{logs}");
    assert!(text(&logs, "/error/message").contains("status"), "{logs}");
    let (_, gone) = mcp
        .call(
            "jobs",
            json!({"action": "status", "id": "r-0000000000000000"}),
        )
        .await;
    assert_eq!(gone["error"]["kind"], "not-found", "{gone}");
}

#[tokio::test]
async fn no_canary_surfaces_through_a_runbooks_outputs_templates_or_state() {
    let (home, _work) = home();
    let token = canary("runbook-token");
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("token");
    std::fs::write(&file, &token).unwrap();
    // A compromised server: it echoes the request's Authorization header in its body.
    let echo = infra_tests::serve::EchoAuth::start(0).await;
    let (base, received) = (echo.base.clone(), echo.received.clone());
    home.policy(
        &(std::fs::read_to_string(home.path().join("policy.toml")).unwrap()
            + "profiles = [\"svc\"]\n"),
    );
    home.profiles(&json!({"svc": {"type": "http", "base_url": base,
        "auth": {"type": "bearer", "token": format!("file:{}", file.display())}}}));
    let mcp = home.mcp().await;
    // The echoed secret goes through a step's output, a template into state, a template into
    // the next request's header and body, and a failing step's detail.
    let runbook = json!({"description": "passes what a server said along",
    "steps": [
        {"id": "fetch", "tool": "http", "args": {"action": "request", "profile": "svc", "url": "/echo"}},
        {"id": "keep", "tool": "state", "args": {"action": "set", "key": "echo", "value": "{{ steps.fetch.text }}"}},
        {"id": "read", "tool": "state", "args": {"action": "get", "key": "echo"}},
        {"id": "send", "tool": "http", "args": {"action": "request", "profile": "svc", "url": "/again",
         "method": "POST", "headers": {"x-echo": "{{ steps.fetch.text }}"}, "body": "{{ steps.read.value }}"}},
        {"id": "fail", "tool": "http", "args": {"action": "check", "profile": "svc", "url": "/x",
         "contains": "{{ steps.send.text }} never"},
         "retry": {"max_attempts": 1, "until": {"path": "result.healthy", "equals": true}}}
    ]});
    let (err, out) = rb(
        &mcp,
        json!({"action": "upsert", "name": "test.echo", "runbook": runbook}),
    )
    .await;
    assert!(!err, "{out}");
    let (err, out) = rb(&mcp, json!({"action": "run", "name": "test.echo"})).await;
    let out = home.whole(out);
    assert!(err, "the last step fails: {out}");
    assert_eq!(out["error"]["detail"]["failed_step"], "fail", "{out}");
    // The server did receive the secret and sent it back: the scrubbing is what keeps it out.
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .all(|a| *a == format!("Bearer {token}")),
        "the profile's token reached the server"
    );
    assert_eq!(received.lock().unwrap().len(), 3);
    assert!(
        text(&out, "/error/detail/steps/0/output/text").starts_with("you sent: "),
        "{out}"
    );
    let (_, dump) = mcp.call("state", json!({"action": "dump"})).await;
    let (_, jobs) = mcp.call("jobs", json!({"action": "list"})).await;
    for (what, v) in [("run", &out), ("state", &dump), ("jobs", &jobs)] {
        assert!(!v.to_string().contains(&token), "{what}: {v}");
    }
    let stderr = mcp.close().await;
    assert!(!stderr.contains(&token), "stderr");
    assert!(
        !infra_tests::contains(&home.all_bytes(), &token),
        "the state directory (audit, state, artifacts)"
    );
}

#[tokio::test]
async fn an_agent_cannot_grow_runbooks_without_end() {
    let (home, _work) = home();
    let step = |i: usize| json!({"id": format!("s{i}"), "tool": "help", "args": {}});
    // 500 runbooks stored already (by the agent, earlier): the file holds no more.
    let full: serde_json::Map<String, Value> = (0..500)
        .map(|i| {
            (
                format!("rb{i}"),
                json!({"description": "d", "steps": [step(0)]}),
            )
        })
        .collect();
    std::fs::write(
        home.path().join("runbooks.json"),
        Value::Object(full).to_string(),
    )
    .unwrap();
    let mcp = home.mcp().await;
    let one = json!({"description": "d", "steps": [step(0)]});
    let (err, out) = rb(
        &mcp,
        json!({"action": "upsert", "name": "one.more", "runbook": one}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["field"], "name", "{out}");
    assert!(text(&out, "/error/message").contains("delete"), "{out}");
    // Replacing one of them is still allowed.
    let (err, out) = rb(
        &mcp,
        json!({"action": "upsert", "name": "rb7", "runbook": one}),
    )
    .await;
    assert!(!err, "{out}");

    let many = json!({"description": "d", "steps": (0..101).map(step).collect::<Vec<_>>()});
    let (err, out) = rb(&mcp, json!({"action": "compile", "runbook": many})).await;
    assert!(!err, "{out}");
    assert_eq!(out["compiles"], false, "{out}");
    assert_eq!(out["problems"][0]["field"], "steps", "{out}");
    let big = json!({"description": "x".repeat(200_000), "steps": [step(0)]});
    let (err, out) = rb(
        &mcp,
        json!({"action": "upsert", "name": "rb1", "runbook": big}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["field"], "runbook", "{out}");
    let stored = std::fs::read_to_string(home.path().join("runbooks.json")).unwrap();
    assert!(stored.len() < 200_000, "nothing large was stored");
}
