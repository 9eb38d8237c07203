//! The ssh plugin's monitoring actions through the real binary over MCP, against a real sshd.
//!
//! `metrics` reads this machine's /proc. docker, smartctl and journalctl cannot really run here
//! (no Docker engine, no S.M.A.R.T. disks, no journal), so the sshd puts stand-ins first on the
//! sessions' PATH ([`ToolStubs`]): scripts that print output captured in the real tools' formats
//! and record their argv, so these tests check the parsing and the options passed through. A
//! second sshd whose PATH holds only the basic tools ([`BareTools`]) checks the missing-tool
//! errors, whatever this machine has installed.

use infra_tests::sshd::{BareTools, Sshd, ToolStubs};
use infra_tests::{Home, Mcp, text, with_fields};
use serde_json::{Value, json};

/// Full container ids of the fixture (`docker ps --no-trunc` prints them whole).
const WEB_ID: &str = "3f4e8a1c9b2d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
const WORKER_ID: &str = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";

/// An sshd started with `config`, and a state directory whose target `box` reaches it.
struct Setup {
    sshd: Sshd,
    home: Home,
}

fn setup(config: &str) -> Setup {
    let sshd = Sshd::start_with(config);
    let home = Home::new();
    std::fs::write(
        home.path().join("targets.json"),
        json!({"box": sshd.target(false, None)}).to_string(),
    )
    .unwrap();
    Setup { sshd, home }
}

/// Runs an ssh action on `box` with `extra` fields.
async fn ssh(mcp: &Mcp, action: &str, extra: Value) -> (bool, Value) {
    mcp.call(
        "ssh",
        with_fields(json!({"action": action, "target": "box"}), extra),
    )
    .await
}

/// Runs an action that must succeed; returns its `data`.
async fn data(mcp: &Mcp, action: &str, extra: Value) -> Value {
    let (err, out) = ssh(mcp, action, extra.clone()).await;
    assert!(!err, "{action} {extra}: {out}");
    out["data"].clone()
}

/// Runs an action that must fail; returns its `error`.
async fn error(mcp: &Mcp, action: &str, extra: Value) -> Value {
    let (err, out) = ssh(mcp, action, extra.clone()).await;
    assert!(err, "{action} {extra} should fail: {out}");
    out["error"].clone()
}

/// The stub invocations recorded since `from` (an index into [`ToolStubs::argv`]).
fn argv_since(stubs: &ToolStubs, from: usize) -> Vec<String> {
    stubs.argv().split_off(from)
}

#[tokio::test]
async fn monitoring_actions_parse_what_the_targets_tools_print() {
    let stubs = ToolStubs::install();
    let s = setup(&stubs.sshd_config());
    let mcp = s.home.mcp().await;

    // The stubs really are what the session runs: PATH arrives as configured (no rc file of
    // the login user prepends to it) and each tool resolves into the stub directory.
    let (err, out) = ssh(
        &mcp,
        "exec",
        json!({"command": "printf '%s\\n' \"$PATH\"; command -v docker smartctl journalctl"}),
    )
    .await;
    assert!(!err, "{out}");
    let bin = stubs.dir().join("bin").display().to_string();
    assert_eq!(
        text(&out, "/command/stdout"),
        format!(
            "{bin}:/usr/local/bin:/usr/bin:/bin\n{bin}/docker\n{bin}/smartctl\n{bin}/journalctl\n"
        ),
        "{out}"
    );

    // metrics: this machine's own /proc and df.
    let d = data(&mcp, "metrics", json!({})).await;
    assert!(d["memory"]["memtotal_kb"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["load"].as_array().unwrap().len(), 3, "{d}");
    assert!(d["cpu"]["count"].as_u64().unwrap() >= 1, "{d}");
    assert!(d["cpu"]["usage_percent"].is_number(), "{d}");
    assert!(!d["disks"].as_array().unwrap().is_empty(), "{d}");
    assert!(
        d["disks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["total_kb"].is_u64() && x["mount"].is_string()),
        "{d}"
    );
    assert!(
        d["network"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["interface"] == "lo" && n["rx_bytes"].is_u64()),
        "{d}"
    );

    // containers: one JSON object per `docker ps` line, every field kept.
    let n = stubs.argv().len();
    let d = data(&mcp, "containers", json!({})).await;
    assert_eq!(d["count"], 2, "{d}");
    let web = &d["containers"][0];
    assert_eq!(web["ID"], WEB_ID, "{d}");
    assert_eq!(web["Names"], "web");
    assert_eq!(web["Image"], "nginx:1.25");
    assert_eq!(web["State"], "running");
    assert_eq!(web["Ports"], "0.0.0.0:8080->80/tcp");
    assert_eq!(d["containers"][1]["Status"], "Exited (137) 3 hours ago");
    assert!(web.get("inspect").is_none(), "no inspect unless asked: {d}");
    assert_eq!(
        argv_since(&stubs, n),
        ["docker [ps] [-a] [--no-trunc] [--format] [{{json .}}]"]
    );

    // inspect: the details of each container, matched by id.
    let n = stubs.argv().len();
    let d = data(&mcp, "containers", json!({"inspect": true})).await;
    assert_eq!(d["count"], 2, "{d}");
    let (web, worker) = (&d["containers"][0], &d["containers"][1]);
    assert_eq!(web["inspect"]["Id"], WEB_ID, "{d}");
    assert_eq!(web["inspect"]["Name"], "/web");
    assert_eq!(web["inspect"]["State"]["Pid"], 48213);
    assert_eq!(
        web["inspect"]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        "8080"
    );
    assert_eq!(worker["inspect"]["Id"], WORKER_ID, "{d}");
    assert_eq!(worker["inspect"]["State"]["OOMKilled"], true);
    assert_eq!(worker["inspect"]["State"]["ExitCode"], 137);
    assert_eq!(worker["inspect"]["RestartCount"], 3);
    assert_eq!(
        argv_since(&stubs, n),
        [
            "docker [ps] [-a] [--no-trunc] [--format] [{{json .}}]".to_string(),
            format!("docker [inspect] [{WEB_ID}] [{WORKER_ID}]"),
        ]
    );

    // container_logs: lines and since passed through, timestamps split off.
    let n = stubs.argv().len();
    let d = data(
        &mcp,
        "container_logs",
        json!({"container": "web", "lines": 3, "since": "10m"}),
    )
    .await;
    assert_eq!(
        argv_since(&stubs, n),
        ["docker [logs] [--timestamps] [--tail] [3] [--since] [10m] [web]"]
    );
    assert_eq!(d["container"], "web");
    assert_eq!(d["count"], 3, "{d}");
    assert_eq!(
        d["lines"][0]["time"], "2024-05-01T10:02:41.500318772Z",
        "{d}"
    );
    assert_eq!(
        d["lines"][0]["line"],
        "172.17.0.1 - - [01/May/2024:10:02:41 +0000] \"GET / HTTP/1.1\" 200 615 \"-\" \"curl/7.88.1\" \"-\""
    );
    assert!(
        text(&d, "/lines/1/line").contains("favicon.ico\" failed"),
        "{d}"
    );
    let n = stubs.argv().len();
    let d = data(&mcp, "container_logs", json!({"container": "web"})).await;
    assert_eq!(d["count"], 5, "every line, up to the default 100: {d}");
    assert_eq!(
        argv_since(&stubs, n),
        ["docker [logs] [--timestamps] [--tail] [100] [web]"]
    );
    // docker's own error arrives on stdout (the command merges stderr into it) and is quoted.
    let e = error(&mcp, "container_logs", json!({"container": "nosuch"})).await;
    assert!(
        text(&e, "/message").contains("No such container: nosuch"),
        "{e}"
    );
    let e = error(&mcp, "container_logs", json!({})).await;
    assert_eq!(e["field"], "container", "{e}");

    // disk_health: every device smartctl --scan finds, whatever its exit bit mask says.
    let n = stubs.argv().len();
    let d = data(&mcp, "disk_health", json!({})).await;
    assert_eq!(
        argv_since(&stubs, n),
        [
            "smartctl [-j] [--scan]",
            "smartctl [-j] [-H] [-A] [-i] [/dev/sda]",
            "smartctl [-j] [-H] [-A] [-i] [/dev/nvme0]",
        ]
    );
    assert_eq!(d["count"], 2, "{d}");
    assert_eq!(
        d["disks"][0],
        json!({"device": "/dev/sda", "model": "Samsung SSD 870 EVO 1TB", "serial": "S6PTNM0T412345A",
               "passed": true, "temperature_c": 31, "power_on_hours": 12873, "exit_status": 0,
               "messages": null})
    );
    assert_eq!(
        d["disks"][1],
        json!({"device": "/dev/nvme0", "model": "WDC WDS500G2B0C-00PXH0", "serial": "20417E801234",
               "passed": false, "temperature_c": 71, "power_on_hours": 40112, "exit_status": 8,
               "messages": null})
    );
    let n = stubs.argv().len();
    let d = data(&mcp, "disk_health", json!({"device": "/dev/sdz"})).await;
    assert_eq!(
        argv_since(&stubs, n),
        ["smartctl [-j] [-H] [-A] [-i] [/dev/sdz]"]
    );
    assert_eq!(d["count"], 1, "{d}");
    assert_eq!(d["disks"][0]["passed"], Value::Null, "{d}");
    assert_eq!(d["disks"][0]["exit_status"], 2, "{d}");
    assert!(
        text(&d, "/disks/0/messages/0/string").contains("/dev/sdz failed: No such device"),
        "{d}"
    );

    // logs: unit, priority and lines passed through; entries parsed from journald's JSON.
    let n = stubs.argv().len();
    let d = data(
        &mcp,
        "logs",
        json!({"unit": "ssh.service", "priority": "warning", "lines": 2}),
    )
    .await;
    assert_eq!(
        argv_since(&stubs, n),
        [
            "journalctl [--no-pager] [-n] [0]",
            "journalctl [-o] [json] [--no-pager] [-n] [2] [-u] [ssh.service] [-p] [warning]",
        ]
    );
    assert_eq!(d["count"], 2, "{d}");
    assert_eq!(
        d["entries"][0],
        json!({"time_us": 1_714_557_605_000_005u64, "unit": "ssh.service", "priority": 4,
               "identifier": "sshd", "message": "Invalid user admin from 203.0.113.9 port 40022"})
    );
    assert_eq!(d["entries"][1]["priority"], 3, "{d}");
    assert!(
        text(&d, "/entries/1/message").starts_with("error: maximum authentication attempts"),
        "{d}"
    );
    let n = stubs.argv().len();
    let d = data(
        &mcp,
        "logs",
        json!({"since": "2024-05-01 10:00:00", "lines": 50}),
    )
    .await;
    assert_eq!(d["count"], 6, "{d}");
    assert_eq!(d["entries"][3]["unit"], "cron.service", "{d}");
    assert_eq!(
        argv_since(&stubs, n)[1],
        "journalctl [-o] [json] [--no-pager] [-n] [50] [--since] [2024-05-01 10:00:00]"
    );
    // journalctl's own complaint is quoted.
    let e = error(&mcp, "logs", json!({"priority": "bogus"})).await;
    assert!(
        text(&e, "/message").contains("Unknown log level bogus"),
        "{e}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn unparsable_tool_output_and_a_missing_journal_are_errors_that_say_so() {
    let stubs = ToolStubs::install();
    let s = setup(&stubs.sshd_config());
    let mcp = s.home.mcp().await;

    // docker inspect output cut off mid-array: an error quoting its start, not containers
    // without details.
    stubs.switch("broken-inspect", true);
    let e = error(&mcp, "containers", json!({"inspect": true})).await;
    let msg = text(&e, "/message");
    assert!(
        msg.contains("`docker inspect` could not be parsed as JSON") && msg.contains(WEB_ID),
        "{e}"
    );
    stubs.switch("broken-inspect", false);
    assert_eq!(
        data(&mcp, "containers", json!({"inspect": true})).await["containers"][0]["inspect"]["Id"],
        WEB_ID
    );

    // smartmontools 6 has no -j: for one device (whose exit code is ignored) the banner is
    // quoted as unparsable; for the scan, the failed command's stdout is quoted.
    stubs.switch("old-smartctl", true);
    let e = error(&mcp, "disk_health", json!({"device": "/dev/sda"})).await;
    let msg = text(&e, "/message");
    assert!(
        msg.contains("`smartctl -j -H -A -i '/dev/sda'` could not be parsed as JSON")
            && msg.contains("smartctl 6.6"),
        "{e}"
    );
    let e = error(&mcp, "disk_health", json!({})).await;
    let msg = text(&e, "/message");
    assert!(
        msg.contains("exited 1") && msg.contains("UNRECOGNIZED OPTION: j"),
        "{e}"
    );
    stubs.switch("old-smartctl", false);

    // No journal files: journalctl prints nothing and exits 0, which must not pass for zero
    // entries.
    stubs.switch("no-journal", true);
    let e = error(&mcp, "logs", json!({"unit": "ssh.service"})).await;
    assert!(
        text(&e, "/message").contains("journald") && text(&e, "/message").contains("no journal"),
        "{e}"
    );
    assert_eq!(e["detail"]["missing_tool"], "journald", "{e}");
    stubs.switch("no-journal", false);
    assert_eq!(
        data(&mcp, "logs", json!({"unit": "ssh.service"})).await["count"],
        4
    );
    mcp.close().await;
}

#[tokio::test]
async fn a_target_without_the_tools_gets_errors_naming_each_missing_one() {
    let bare = BareTools::install();
    let s = setup(&bare.sshd_config());
    let mcp = s.home.mcp().await;

    // The session works (the scripts' basic tools are there); only the monitoring tools are not.
    let d = {
        let (err, out) = ssh(&mcp, "system_info", json!({})).await;
        assert!(!err, "{out}");
        out["info"].clone()
    };
    assert!(d["mem_total_kb"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["user"], s.sshd.user.as_str(), "{d}");
    let (_, out) = ssh(
        &mcp,
        "exec",
        json!({"command": "command -v docker smartctl journalctl; echo \"$PATH\""}),
    )
    .await;
    assert_eq!(
        text(&out, "/command/stdout"),
        format!("{}\n", bare.dir().display()),
        "none of the tools resolves, and PATH is only the bare directory: {out}"
    );

    for (action, extra, tool) in [
        ("containers", json!({}), "docker"),
        ("containers", json!({"inspect": true}), "docker"),
        ("container_logs", json!({"container": "web"}), "docker"),
        ("disk_health", json!({}), "smartctl"),
        ("disk_health", json!({"device": "/dev/sda"}), "smartctl"),
        (
            "logs",
            json!({"unit": "ssh.service", "lines": 5}),
            "journalctl",
        ),
    ] {
        let e = error(&mcp, action, extra.clone()).await;
        assert_eq!(e["kind"], "failed", "{action} {extra}: {e}");
        assert_eq!(e["detail"]["missing_tool"], tool, "{action} {extra}: {e}");
        let msg = text(&e, "/message");
        assert!(
            msg.contains(&format!("`{action}` needs `{tool}`")) && msg.contains("'box'"),
            "{action} {extra}: {msg}"
        );
    }
    mcp.close().await;
}

/// A built-in runbook run through MCP; its answer (or error).
async fn runbook(mcp: &Mcp, name: &str) -> (bool, Value) {
    mcp.call(
        "runbook",
        json!({"action": "run", "name": name, "inputs": {"target": "box"}}),
    )
    .await
}

#[tokio::test]
async fn the_ssh_runbooks_run_against_the_real_sshd_and_say_what_each_step_found() {
    let stubs = ToolStubs::install();
    let s = setup(&stubs.sshd_config());
    let mcp = s.home.mcp().await;
    for name in [
        "ssh.system_info",
        "ssh.health",
        "host.monitor",
        "preflight.ssh",
    ] {
        let (err, out) = runbook(&mcp, name).await;
        let out = s.home.whole(out);
        assert!(!err, "{name}: {out}");
        for step in out["steps"].as_array().unwrap() {
            assert_eq!(step["outcome"], "ok", "{name}: {step}");
        }
    }
    let (_, out) = runbook(&mcp, "preflight.ssh").await;
    let out = s.home.whole(out);
    assert!(
        text(&out, "/steps/1/output/command/stdout").starts_with(&s.sshd.user),
        "{out}"
    );
    let (_, out) = runbook(&mcp, "host.monitor").await;
    let out = s.home.whole(out);
    assert_eq!(
        out["steps"][0]["output"]["data"]["containers"][0]["ID"], WEB_ID,
        "{out}"
    );
    assert_eq!(
        out["steps"][2]["output"]["data"]["disks"][1]["passed"], false,
        "{out}"
    );

    // On a machine without docker, smartctl or a journal, host.monitor still reports metrics
    // and says which part is missing; the run goes on past each.
    let bare = BareTools::install();
    let s = setup(&bare.sshd_config());
    let mcp = s.home.mcp().await;
    let (err, out) = runbook(&mcp, "host.monitor").await;
    let out = s.home.whole(out);
    assert!(!err, "continue_on_error parts do not fail the run: {out}");
    let outcomes: Vec<&str> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "ok", "failed", "failed"], "{out}");
    assert!(text(&out, "/steps/0/error").contains("docker"), "{out}");
}
