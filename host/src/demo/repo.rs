//! The demo's repo and local steps. The demo makes a small git repository and runs infra in
//! it, as an MCP client starts infra in the project it works on: the embedded default policy's
//! root `workspace` is `.`, the directory infra started in, read-only for the `repo` plugin.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use serde_json::json;

use super::Demo;
use crate::flags::Flags;

/// Runs `git args` in `dir` with nothing of the user's git configuration (the repository must
/// look the same on every machine).
fn git(dir: &Path, home: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Demo")
        .env("GIT_AUTHOR_EMAIL", "demo@example.invalid")
        .env("GIT_COMMITTER_NAME", "Demo")
        .env("GIT_COMMITTER_EMAIL", "demo@example.invalid")
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    anyhow::ensure!(
        out.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Makes `<dir>/repo`: two commits on `main`, then one file changed and one untracked. `None`
/// (with why) when git is not installed: the demo then skips these steps.
pub(super) fn make(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo)?;
    if let Err(e) = git(&repo, dir, &["init", "-q", "-b", "main"]) {
        println!("   (no repo steps: {e:#}; install git to see them)");
        return Ok(None);
    }
    std::fs::write(repo.join("README.md"), "# demo service\n")?;
    git(&repo, dir, &["add", "README.md"])?;
    git(
        &repo,
        dir,
        &["commit", "-q", "-m", "Start the demo service"],
    )?;
    std::fs::write(repo.join("app.conf"), "port = 8080\n")?;
    git(&repo, dir, &["add", "app.conf"])?;
    git(&repo, dir, &["commit", "-q", "-m", "Configure the port"])?;
    std::fs::write(
        repo.join("README.md"),
        "# demo service\n\nListens on 8080.\n",
    )?;
    std::fs::write(repo.join("notes.txt"), "not yet tracked\n")?;
    Ok(Some(repo))
}

/// `repo snapshot` of the repository infra runs in; then the `local` tool, off without the flag.
pub(super) async fn steps(d: &mut Demo, flags: Flags) {
    let (err, out) = d
        .call(
            "A git repository, read through the repo tool: git runs confined to the root, with \
             hooks, pagers and filters of the repository switched off",
            "repo",
            json!({"action": "snapshot"}),
        )
        .await;
    let status = &out["status"];
    if err {
        println!("   → {}", super::short(&out["error"]));
    }
    println!(
        "   → branch {} · {} commits · {} changed, {} untracked",
        status["branch"],
        out["commits"].as_array().map_or(0, Vec::len),
        status["counts"]["unstaged"],
        status["counts"]["untracked"]
    );
    d.expect(
        "on main, 2 commits, 1 changed file and 1 untracked",
        !err && status["branch"] == "main"
            && out["commits"].as_array().map_or(0, Vec::len) == 2
            && status["counts"]["unstaged"] == 1
            && status["counts"]["untracked"] == 1,
    );

    if flags.unsafe_local {
        println!(
            "\n   (INFRA_UNSAFE_LOCAL=1 is set: the `local` tool is on, so its refusal is not shown)"
        );
        return;
    }
    let (err, out) = d
        .call(
            "The local tool (a shell on this machine) is off without INFRA_UNSAFE_LOCAL=1",
            "local",
            json!({"action": "exec", "command": "id"}),
        )
        .await;
    let message = out["error"]["message"].as_str().unwrap_or_default();
    println!("   → {}", super::short(&out["error"]));
    d.expect(
        "refused as denied, naming the flag",
        err && out["error"]["kind"] == "denied" && message.contains("INFRA_UNSAFE_LOCAL=1"),
    );
}
