//! Facts about the machine and the run, printed above the table so a reader can compare runs.

use std::path::Path;
use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn first_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// A markdown list: nproc, CPU, memory, kernel, date, command line, binaries and versions.
pub fn facts(infra_bin: &Path) -> String {
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    let mem_kib: f64 = first_field(&meminfo, "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0.0);
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let args: Vec<String> = std::env::args().collect();
    let git = output("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = !output("git", &["--no-optional-locks", "status", "--porcelain"]).is_empty();
    let pg = infra_tests::pg::find_bin("psql")
        .map(|p| output(&p.to_string_lossy(), &["--version"]))
        .unwrap_or_default();
    let ssh = Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    let curl = output("curl", &["--version"]);
    [
        format!(
            "- date: {}",
            output("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        ),
        format!("- command: `{}`", args.join(" ")),
        format!("- nproc: {nproc}"),
        format!(
            "- CPU: {}",
            first_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into())
        ),
        format!("- memory: {:.1} GiB", mem_kib / 1024.0 / 1024.0),
        format!(
            "- kernel: {} ({})",
            read("/proc/sys/kernel/osrelease").trim(),
            output("uname", &["-m"])
        ),
        format!("- load average at start: {}", read("/proc/loadavg").trim()),
        format!(
            "- infra binary: {} (git {git}{})",
            infra_bin.display(),
            if dirty { ", working tree dirty" } else { "" }
        ),
        format!(
            "- baselines: {ssh}; {pg}; {}",
            curl.lines().next().unwrap_or_default()
        ),
    ]
    .join("\n")
}
