//! The demo's SSH steps, against the `--servers` target: a command on a pooled connection,
//! parsed metrics, a timeout that kills the remote process, and a background job.

use serde_json::json;

use super::{Demo, short};

/// Runs the ssh steps on `target`.
pub(super) async fn steps(d: &mut Demo, target: &str) {
    let (err, out) = d
        .call(
            "A command over SSH: the key and the host-key pin stay in the host",
            "ssh",
            json!({"action": "exec", "target": target, "command": "uname -sr; echo \"user: $(id -un)\""}),
        )
        .await;
    println!(
        "   → exit {} stdout {}",
        out["command"]["exit_code"],
        short(&out["command"]["stdout"])
    );
    d.expect("exit code 0", !err && out["command"]["exit_code"] == 0);

    let (err, out) = d
        .call(
            "Device monitoring: /proc and df parsed to JSON",
            "ssh",
            json!({"action": "metrics", "target": target}),
        )
        .await;
    println!(
        "   → load {} memory {}",
        out["data"]["load"],
        short(&out["data"]["memory"])
    );
    d.expect("metrics parsed", !err && out["data"]["load"].is_array());

    let (err, out) = d
        .call(
            "A command past its timeout: the host kills its whole remote process group",
            "ssh",
            json!({"action": "exec", "target": target, "command": "sleep 60", "timeout_ms": 3000}),
        )
        .await;
    println!("   → {}", out["error"]["message"].as_str().unwrap_or("?"));
    d.expect(
        "timed out and killed",
        err && out["error"]["kind"] == "timeout",
    );

    let (err, out) = d
        .call(
            "A background job: exec_detached returns at once with a job id",
            "ssh",
            json!({"action": "exec_detached", "target": target,
                   "command": "for i in 1 2 3; do echo tick $i; sleep 1; done"}),
        )
        .await;
    let id = out["job"]["id"].as_str().unwrap_or_default().to_string();
    let dir = out["job"]["dir"].as_str().unwrap_or_default().to_string();
    println!("   → job {id} (pid {})", out["job"]["pid"]);
    d.expect("the job started", !err && !id.is_empty());
    let (err, out) = d
        .call(
            "jobs wait: until it ends (progress notifications meanwhile)",
            "jobs",
            json!({"action": "wait", "id": id, "timeout_ms": 20000}),
        )
        .await;
    println!(
        "   → {} exit {} after {} ms",
        out["state"], out["exit_code"], out["waited_ms"]
    );
    d.expect(
        "exited 0",
        !err && out["state"] == "exited" && out["exit_code"] == 0,
    );
    let (err, out) = d
        .call(
            "jobs logs: the tail of its output",
            "jobs",
            json!({"action": "logs", "id": id, "stream": "stdout"}),
        )
        .await;
    println!("   → {}", short(&out["stdout"]));
    d.expect(
        "three ticks",
        !err && out["stdout"] == "tick 1\ntick 2\ntick 3\n",
    );
    if !dir.is_empty() {
        // The demo's target is this machine: leave nothing behind in the user's home.
        let _ = d
            .call(
                "Tidy up the job's directory on the target",
                "ssh",
                json!({"action": "exec", "target": target,
                       "command": format!("rm -rf {}", crate::caps::ssh::sh_quote(&dir))}),
            )
            .await;
    }
}
