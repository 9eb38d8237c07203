//! `repo snapshot` + `repo diff` on a large repository (made here: 10,000 files, 1,000 commits,
//! 50 files changed) vs `git status && git diff --stat && git log -20` run directly.

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};
use infra_tests::Home;
use infra_tests::git::{command, large, write};
use serde_json::{Value, json};

use crate::harness::{Scale, call, run_quiet, secs, serve};
use crate::table::{Row, m, median};

/// The policy: the repository's parent as the root `bench`, git granted read-only.
fn policy(root: &std::path::Path) -> String {
    format!(
        "[roots]\nbench = {{ path = \"{}\", read_only = true }}\n\n[programs]\ngit = \"/usr/bin/git\"\n\n\
         [plugin.repo.fs]\nroots = [\"bench\"]\n\n[plugin.repo.exec]\nprograms = [\"git\"]\nroots = [\"bench\"]\n\n\
         [plugin.repo.artifacts]\n[plugin.repo.log]\n",
        root.display()
    )
}

/// Rewrites the index once the clock has passed the files' modification second, so that no entry
/// is "racily clean": infra's runs on a read-only root may not write the index
/// (`GIT_OPTIONAL_LOCKS=0`), and would otherwise re-read every such file on every run while the
/// baseline's first run repairs the index for itself.
fn settle_index(dir: &std::path::Path) -> Result<()> {
    let index = dir.join(".git/index");
    let newest = std::fs::metadata(&index)?.modified()?;
    while std::time::SystemTime::now()
        .duration_since(newest)
        .unwrap_or_default()
        < std::time::Duration::from_millis(1100)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut refresh = command(dir);
    refresh.args(["update-index", "-q", "--really-refresh"]);
    run_quiet(&mut refresh)?;
    // A changed file's entry is rewritten too: touch the index once more after the tick.
    let mut status = command(dir);
    status.args(["status", "--porcelain"]);
    run_quiet(&mut status)?;
    Ok(())
}

/// The baseline: three git processes, as a shell `&&` chain would run them.
fn baseline(dir: &std::path::Path) -> Result<f64> {
    let mut total = 0.0;
    for args in [
        &["status"][..],
        &["diff", "--stat"][..],
        &["log", "-20"][..],
    ] {
        let mut c: Command = command(dir);
        c.args(args);
        total += run_quiet(&mut c)?;
    }
    Ok(total)
}

/// The row: snapshot + diff pairs per second through infra vs the three git commands.
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(20, 3);
    let files = scale.n(10_000, 200);
    let commits = scale.n(1_000, 20);
    let root = tempfile::tempdir()?;
    let dir = root.path().join("big");
    eprintln!("[repo] making a repository of {files} files and {commits} commits");
    large(&dir, files, commits);
    for i in 0..50 {
        let n = i * (files / 50);
        let f = format!("src/d{:02}/f{n:05}.txt", n % 100);
        write(&dir, &f, format!("changed {i}\n"));
    }
    settle_index(&dir)?;
    let home = Home::new();
    home.policy(&policy(root.path()));
    let server = serve(&home, &[]).await?;
    let snapshot = json!({"action": "snapshot", "root": "bench", "path": "big", "commits": 20});
    let diff = json!({"action": "diff", "root": "bench", "path": "big"});
    let check = |out: &Value| -> Result<()> {
        if out.pointer("/status/counts/unstaged") != Some(&json!(50))
            && out.pointer("/diffstat/files_changed") != Some(&json!(50))
        {
            let start: String = out.to_string().chars().take(300).collect();
            bail!("repo: not the 50 changed files expected: {start}…");
        }
        Ok(())
    };
    check(&call(&server.mcp, "repo", &snapshot).await?)?;
    check(&call(&server.mcp, "repo", &diff).await?)?;
    baseline(&dir)?;

    let mut diff_baseline = command(&dir);
    diff_baseline.args(["diff", "--stat"]);
    let (mut snap, mut trio, mut diffs, mut stat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[repo] rep {}/{}: {n} calls each", rep + 1, scale.reps);
        let t = Instant::now();
        for _ in 0..n {
            check(&call(&server.mcp, "repo", &snapshot).await?)?;
        }
        snap.push(n as f64 / secs(t));
        let mut spent = 0.0;
        for _ in 0..n {
            spent += baseline(&dir)?;
        }
        trio.push(n as f64 / spent);
        let t = Instant::now();
        for _ in 0..n {
            check(&call(&server.mcp, "repo", &diff).await?)?;
        }
        diffs.push(n as f64 / secs(t));
        let mut spent = 0.0;
        for _ in 0..n {
            spent += run_quiet(&mut diff_baseline)?;
        }
        stat.push(n as f64 / spent);
    }
    server.mcp.close().await;
    let note = format!(
        "{n} sequential calls × {} reps; {files} files, {commits} commits, 50 changed",
        scale.reps
    );
    let (snap, trio, diffs, stat) = (median(&snap), median(&trio), median(&diffs), median(&stat));
    Ok(vec![
        Row {
            name: format!("repo `snapshot` ×{n} (large repository)"),
            infra: m(snap, "calls/s"),
            baseline: Some((
                "`git status && git diff --stat && git log -20`, run directly".into(),
                m(trio, "runs/s"),
            )),
            target: Some(("≥ 0.8×".into(), snap / trio >= 0.8)),
            note: note.clone(),
        },
        Row {
            name: format!("repo `diff` (stat) ×{n} (large repository)"),
            infra: m(diffs, "calls/s"),
            baseline: Some(("`git diff --stat`, run directly".into(), m(stat, "runs/s"))),
            target: Some(("≥ 0.8×".into(), diffs / stat >= 0.8)),
            note,
        },
    ])
}
