//! Linux device monitoring: the target's own tools, parsed to JSON. A target without the tool
//! an action needs gets an error naming the tool, never an empty success; output that does not
//! parse is an error quoting it, never a result full of nulls.

use infra_sdk::prelude::*;

use crate::args::{Window, sh_quote};

/// What the guard prints when a tool is missing.
const MISSING: &str = "__infra_missing__";

/// Characters of a tool's output quoted in an error: enough to recognise it, not a flood.
const EXCERPT_CHARS: usize = 400;

/// A command that first checks `tool` is installed.
fn needs(tool: &str, command: &str) -> String {
    format!(
        "command -v {tool} >/dev/null 2>&1 || {{ echo '{MISSING} {tool}' >&2; exit 127; }}\n{command}"
    )
}

/// The start of `text`, trimmed, at most [`EXCERPT_CHARS`] characters (`…` when cut).
fn head_excerpt(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// The end of `text`, trimmed, at most [`EXCERPT_CHARS`] characters: a failing tool says why
/// last, after whatever else it printed.
fn tail_excerpt(text: &str) -> String {
    let t = text.trim();
    let n = t.chars().count();
    if n <= EXCERPT_CHARS {
        return t.to_string();
    }
    let (i, _) = t
        .char_indices()
        .nth(n - EXCERPT_CHARS)
        .expect("n > EXCERPT_CHARS");
    format!("…{}", &t[i..])
}

/// The error for a tool (or, for `journald`, a journal) the target lacks.
fn missing(target: &str, action: &str, tool: &str) -> ToolError {
    let message = match tool {
        "journald" => format!(
            "`{action}` reads the systemd journal, and target '{target}' has none: journalctl found no journal files (journald is not running there or keeps no logs); read the service's own log files with `exec` instead"
        ),
        _ => {
            let package = match tool {
                "docker" => " (the Docker CLI, package docker-ce-cli or docker.io)",
                "smartctl" => " (package smartmontools)",
                "journalctl" => " (part of systemd)",
                _ => "",
            };
            format!(
                "`{action}` needs `{tool}`{package} on target '{target}', and it is not installed there (or not on the PATH of the SSH user)"
            )
        }
    };
    ToolError::failed(message).with_detail(json!({"missing_tool": tool}))
}

/// Runs `command`; Ok(stdout) on exit 0, an error naming a missing tool or quoting what the
/// command printed.
fn run_cmd(target: &str, ctx: &Ctx, action: &str, command: &str) -> Result<String, ToolError> {
    let r = crate::probe(target, ctx, command, 8 * 1024 * 1024)?;
    let stdout = String::from_utf8_lossy(&r.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
    if let Some(line) = stderr.lines().find(|l| l.starts_with(MISSING)) {
        return Err(missing(target, action, line[MISSING.len()..].trim()));
    }
    if r.exit_code != Some(0) {
        // Some commands merge stderr into stdout (`docker logs … 2>&1`), so their error message
        // arrives on stdout: quote that when stderr says nothing.
        let said = if stderr.trim().is_empty() {
            &stdout
        } else {
            &stderr
        };
        return Err(ToolError::failed(format!(
            "`{action}` on target '{target}': the command exited {}: {}",
            r.exit_code
                .map_or_else(|| format!("by signal {:?}", r.signal), |c| c.to_string()),
            match tail_excerpt(said) {
                s if s.is_empty() => "(it printed nothing)".to_string(),
                s => s,
            }
        )));
    }
    Ok(stdout)
}

/// Parses the JSON `tool` printed; a failure is an error quoting the start of the output, so
/// an old tool version or a warning mixed into stdout is visible instead of silent nulls.
fn parse_json(target: &str, action: &str, tool: &str, text: &str) -> Result<Value, ToolError> {
    serde_json::from_str(text).map_err(|e| {
        ToolError::failed(format!(
            "`{action}` on target '{target}': the output of `{tool}` could not be parsed as JSON ({e}); it began: {}",
            match head_excerpt(text) {
                s if s.is_empty() => "(nothing)".to_string(),
                s => format!("{s:?}"),
            }
        ))
    })
}

/// Parses one JSON value per non-empty line (`docker ps --format '{{json .}}'`,
/// `journalctl -o json`).
fn parse_lines(
    target: &str,
    action: &str,
    tool: &str,
    text: &str,
) -> Result<Vec<Value>, ToolError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_json(target, action, tool, l))
        .collect()
}

/// Key=value lines into a map.
fn kv(text: &str) -> serde_json::Map<String, Value> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), json!(v.trim())))
        .collect()
}

fn num(v: &str) -> Value {
    v.parse::<u64>()
        .map(|n| json!(n))
        .or_else(|_| v.parse::<f64>().map(|f| json!(f)))
        .unwrap_or_else(|_| json!(v))
}

/// Host name, OS, kernel, uptime, CPUs, memory, load, root disk.
pub fn system_info(target: &str, ctx: &Ctx) -> Result<Value, ToolError> {
    let script = r#"echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
echo "kernel=$(uname -sr)"
echo "arch=$(uname -m)"
[ -r /etc/os-release ] && . /etc/os-release && echo "os=$PRETTY_NAME"
echo "uptime_s=$(cut -d. -f1 /proc/uptime 2>/dev/null)"
echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"
echo "load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
awk '/^MemTotal:/ {print "mem_total_kb=" $2} /^MemAvailable:/ {print "mem_available_kb=" $2}' /proc/meminfo 2>/dev/null
df -Pk / 2>/dev/null | awk 'NR==2 {print "root_total_kb=" $2; print "root_used_kb=" $3; print "root_available_kb=" $4}'
echo "user=$(id -un)""#;
    let out = run_cmd(target, ctx, "system_info", script)?;
    let mut m = kv(&out);
    for k in [
        "uptime_s",
        "cpus",
        "mem_total_kb",
        "mem_available_kb",
        "root_total_kb",
        "root_used_kb",
        "root_available_kb",
    ] {
        if let Some(Value::String(s)) = m.get(k).cloned() {
            m.insert(k.into(), num(&s));
        }
    }
    if let Some(Value::String(l)) = m.get("load").cloned() {
        m.insert(
            "load".into(),
            json!(l.split_whitespace().map(num).collect::<Vec<_>>()),
        );
    }
    Ok(Value::Object(m))
}

/// `containers`: `docker ps -a`, and with `inspect` each container's `docker inspect` too.
pub fn containers(t: &str, ctx: &Ctx, inspect: bool) -> Result<Value, ToolError> {
    let ps = "docker ps -a --no-trunc --format '{{json .}}'";
    let out = run_cmd(t, ctx, "containers", &needs("docker", ps))?;
    let mut list = parse_lines(t, "containers", ps, &out)?;
    if inspect && !list.is_empty() {
        let ids: Vec<String> = list
            .iter()
            .filter_map(|c| c["ID"].as_str().map(sh_quote))
            .collect();
        let text = run_cmd(
            t,
            ctx,
            "containers",
            &needs("docker", &format!("docker inspect {}", ids.join(" "))),
        )?;
        let details = parse_json(t, "containers", "docker inspect", &text)?;
        let Value::Array(details) = details else {
            return Err(ToolError::failed(format!(
                "`containers` on target '{t}': `docker inspect` printed JSON that is not an array of containers; it began: {:?}",
                head_excerpt(&text)
            )));
        };
        for c in &mut list {
            let id = c["ID"].as_str().unwrap_or_default().to_string();
            if let Some(d) = details
                .iter()
                .find(|d| d["Id"].as_str().is_some_and(|x| x.starts_with(&id)))
            {
                c["inspect"] = d.clone();
            }
        }
    }
    Ok(json!({"count": list.len(), "containers": list}))
}

/// `container_logs`: the last lines of container `c`'s log.
pub fn container_logs(t: &str, ctx: &Ctx, c: &str, window: &Window) -> Result<Value, ToolError> {
    let lines = window.lines();
    let since = window
        .since
        .as_ref()
        .map(|s| format!(" --since {}", sh_quote(s)))
        .unwrap_or_default();
    let out = run_cmd(
        t,
        ctx,
        "container_logs",
        &needs(
            "docker",
            &format!(
                "docker logs --timestamps --tail {lines}{since} {} 2>&1",
                sh_quote(c)
            ),
        ),
    )?;
    let entries: Vec<Value> = out
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((ts, msg)) if ts.len() >= 20 && ts.as_bytes()[4] == b'-' => {
                json!({"time": ts, "line": msg})
            }
            _ => json!({"line": l}),
        })
        .collect();
    Ok(json!({"container": c, "count": entries.len(), "lines": entries}))
}

/// `disk_health`: S.M.A.R.T. health of `device`, or of every device `smartctl --scan` finds.
pub fn disk_health(t: &str, ctx: &Ctx, device: Option<&str>) -> Result<Value, ToolError> {
    let devices = match device {
        Some(d) => vec![d.to_string()],
        None => {
            let scan = run_cmd(
                t,
                ctx,
                "disk_health",
                &needs("smartctl", "smartctl -j --scan"),
            )?;
            let v = parse_json(t, "disk_health", "smartctl -j --scan", &scan)?;
            v["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["name"].as_str().map(String::from))
                .collect()
        }
    };
    let mut disks = Vec::new();
    for d in &devices {
        // smartctl's exit code is a bit mask of findings; read the JSON whatever it is.
        let smartctl = format!("smartctl -j -H -A -i {}", sh_quote(d));
        let cmd = needs("smartctl", &format!("{smartctl} ; true"));
        let out = run_cmd(t, ctx, "disk_health", &cmd)?;
        let v = parse_json(t, "disk_health", &smartctl, &out)?;
        disks.push(json!({
            "device": d,
            "model": v["model_name"],
            "serial": v["serial_number"],
            "passed": v["smart_status"]["passed"],
            "temperature_c": v["temperature"]["current"],
            "power_on_hours": v["power_on_time"]["hours"],
            "exit_status": v["smartctl"]["exit_status"],
            "messages": v["smartctl"]["messages"],
        }));
    }
    Ok(json!({"count": disks.len(), "disks": disks}))
}

/// `logs`: journald entries by unit, priority and window.
pub fn logs(
    t: &str,
    ctx: &Ctx,
    unit: Option<&str>,
    priority: Option<&str>,
    window: &Window,
) -> Result<Value, ToolError> {
    let lines = window.lines();
    let mut cmd = format!("journalctl -o json --no-pager -n {lines}");
    if let Some(u) = unit {
        cmd.push_str(&format!(" -u {}", sh_quote(u)));
    }
    if let Some(p) = priority {
        cmd.push_str(&format!(" -p {}", sh_quote(p)));
    }
    if let Some(s) = &window.since {
        cmd.push_str(&format!(" --since {}", sh_quote(s)));
    }
    // Without journal files journalctl prints nothing and exits 0, and `-o json` even
    // silences its notice: ask once in text mode (stdout dropped, the notice kept) so a
    // machine without a journal is an error, not zero entries. Where the journal lives
    // (/run, /var/log, a namespace) is journalctl's business, so no path is assumed.
    let script = format!(
        "notice=$(journalctl --no-pager -n 0 2>&1 >/dev/null) || {{ printf 'journalctl: %s\\n' \"$notice\" >&2; exit 1; }}\n\
         case $notice in *'No journal files were found'*) echo '{MISSING} journald' >&2; exit 127;; esac\n\
         case $notice in *'insufficient permissions'*) printf 'journalctl: %s\\n' \"$notice\" >&2; exit 1;; esac\n\
         {cmd}"
    );
    let out = run_cmd(t, ctx, "logs", &needs("journalctl", &script))?;
    let entries: Vec<Value> = parse_lines(t, "logs", "journalctl -o json", &out)?
        .into_iter()
        .map(|e| {
            json!({
                "time_us": e["__REALTIME_TIMESTAMP"].as_str().and_then(|s| s.parse::<u64>().ok()),
                "unit": e["_SYSTEMD_UNIT"],
                "priority": e["PRIORITY"].as_str().and_then(|s| s.parse::<u8>().ok()),
                "identifier": e["SYSLOG_IDENTIFIER"],
                "message": e["MESSAGE"],
            })
        })
        .collect();
    Ok(json!({"count": entries.len(), "entries": entries}))
}

/// `metrics`: CPU (two /proc/stat samples), load, memory, disks and network.
pub fn metrics(t: &str, ctx: &Ctx) -> Result<Value, ToolError> {
    let script = r#"head -1 /proc/stat; sleep 0.25; head -1 /proc/stat
echo '--load'; cat /proc/loadavg
echo '--mem'; cat /proc/meminfo
echo '--df'; df -Pk -x tmpfs -x devtmpfs -x overlay -x squashfs 2>/dev/null || df -Pk
echo '--net'; cat /proc/net/dev
echo '--cpus'; getconf _NPROCESSORS_ONLN 2>/dev/null || nproc"#;
    let out = run_cmd(t, ctx, "metrics", script)?;
    let mut sections: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    let mut cur = "cpu";
    for l in out.lines() {
        if let Some(name) = l.strip_prefix("--") {
            cur = name;
            continue;
        }
        sections.entry(cur).or_default().push(l);
    }
    let sample = |l: &str| -> Vec<u64> {
        l.split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    let cpu = sections.get("cpu").cloned().unwrap_or_default();
    let usage = if cpu.len() >= 2 {
        let (a, b) = (sample(cpu[0]), sample(cpu[1]));
        let total = |v: &Vec<u64>| v.iter().sum::<u64>();
        let idle = |v: &Vec<u64>| v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        let dt = total(&b).saturating_sub(total(&a));
        let di = idle(&b).saturating_sub(idle(&a));
        (dt > 0).then(|| ((dt - di) as f64 * 1000.0 / dt as f64).round() / 10.0)
    } else {
        None
    };
    let load: Vec<Value> = sections
        .get("load")
        .and_then(|l| l.first())
        .map(|l| l.split_whitespace().take(3).map(num).collect())
        .unwrap_or_default();
    let mem: serde_json::Map<String, Value> = sections
        .get("mem")
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n: u64 = v.split_whitespace().next()?.parse().ok()?;
            matches!(
                k,
                "MemTotal"
                    | "MemAvailable"
                    | "MemFree"
                    | "Buffers"
                    | "Cached"
                    | "SwapTotal"
                    | "SwapFree"
            )
            .then(|| (format!("{}_kb", k.to_ascii_lowercase()), json!(n)))
        })
        .collect();
    let disks: Vec<Value> = sections
        .get("df")
        .into_iter()
        .flatten()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6).then(|| {
                json!({"filesystem": f[0], "total_kb": num(f[1]), "used_kb": num(f[2]),
                       "available_kb": num(f[3]), "use_percent": num(f[4].trim_end_matches('%')),
                       "mount": f[5..].join(" ")})
            })
        })
        .collect();
    let net: Vec<Value> = sections
        .get("net")
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() >= 16).then(|| {
                json!({"interface": name.trim(), "rx_bytes": f[0], "rx_packets": f[1], "rx_errors": f[2],
                       "tx_bytes": f[8], "tx_packets": f[9], "tx_errors": f[10]})
            })
        })
        .collect();
    let cpus = sections
        .get("cpus")
        .and_then(|l| l.first())
        .map(|l| num(l.trim()));
    Ok(json!({
        "cpu": {"usage_percent": usage, "count": cpus},
        "load": load,
        "memory": mem,
        "disks": disks,
        "network": net,
    }))
}
