//! What `git` would run from a repository, switched off. Applied to every run whose program file
//! is `git` (exec and push alike): no system or global config, no prompts, no pager, discovery
//! stopped at the root, and — through `GIT_CONFIG_COUNT`, which outranks the repository's own
//! config — hooks, fsmonitor, editors, askpass, credential helpers, external diff, signing
//! programs and transports set to harmless values, plus every driver, alias, pager and
//! upload/receive-pack the repository's config defines (read with its includes, by git itself
//! under this same neutral environment and confinement, which runs nothing).

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::Refusal;
use super::env::Env;
use super::spawn::{Spec, spawn};

/// Keys set for every git run, whatever the repository says.
const FIXED: &[(&str, &str)] = &[
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("core.askPass", ""),
    ("core.alternateRefsCommand", ""),
    ("core.gitProxy", ""),
    ("credential.helper", ""),
    ("diff.external", ""),
    ("gpg.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("gpg.ssh.defaultKeyCommand", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("push.gpgSign", "false"),
    ("protocol.allow", "never"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("push.recurseSubmodules", "no"),
    ("uploadpack.packObjectsHook", ""),
];

/// For a key the repository's config defines, the harmless value that replaces it; `None` when
/// the key runs nothing.
fn harmless(key: &str) -> Vec<(String, &'static str)> {
    let lower = key.to_ascii_lowercase();
    let parts: Vec<&str> = lower.splitn(2, '.').collect();
    let (section, rest) = match parts.as_slice() {
        [s, r] => (*s, *r),
        _ => return Vec::new(),
    };
    // `rest` is `<subsection>.<name>` for driver sections; the subsection keeps its case.
    let sub_of = |name: &str| {
        key.get(section.len() + 1..key.len() - name.len() - 1)
            .map(str::to_string)
    };
    let var = rest.rsplit('.').next().unwrap_or(rest);
    match section {
        "filter" => match sub_of(var) {
            Some(d) => vec![
                (format!("filter.{d}.clean"), ""),
                (format!("filter.{d}.smudge"), ""),
                (format!("filter.{d}.process"), ""),
                (format!("filter.{d}.required"), "false"),
            ],
            None => Vec::new(),
        },
        "diff" if var == "textconv" || var == "command" => match sub_of(var) {
            // `cat` prints the file as it is: the diff shows its real content.
            Some(d) => vec![
                (format!("diff.{d}.textconv"), "cat"),
                (format!("diff.{d}.command"), ""),
            ],
            None => Vec::new(),
        },
        "merge" if var == "driver" => match sub_of(var) {
            // A driver that always reports a conflict: the merge stops, nothing runs.
            Some(d) => vec![(format!("merge.{d}.driver"), "false")],
            None => Vec::new(),
        },
        "remote" if var == "uploadpack" || var == "receivepack" => match sub_of(var) {
            Some(r) => vec![
                (format!("remote.{r}.uploadpack"), "git-upload-pack"),
                (format!("remote.{r}.receivepack"), "git-receive-pack"),
            ],
            None => Vec::new(),
        },
        "alias" => vec![(key.to_string(), "version")],
        "pager" => vec![(key.to_string(), "false")],
        _ => Vec::new(),
    }
}

/// Sets the neutral environment on `env` for a repository under `root` (a directory git must
/// not look above); `read_only` keeps git from taking optional locks it could not write.
pub fn base(env: &mut Env, root: &Path, read_only: bool) {
    env.set("GIT_CONFIG_NOSYSTEM", "1");
    env.set("GIT_CONFIG_GLOBAL", "/dev/null");
    env.set("GIT_TERMINAL_PROMPT", "0");
    env.set("GIT_PAGER", "cat");
    env.set("PAGER", "cat");
    env.set("GIT_EDITOR", "false");
    env.set("GIT_ATTR_NOSYSTEM", "1");
    env.set(
        "GIT_CEILING_DIRECTORIES",
        root.parent().unwrap_or(Path::new("/")),
    );
    if read_only {
        env.set("GIT_OPTIONAL_LOCKS", "0");
    }
    overrides(env, &[]);
}

/// Sets `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n`: the fixed keys, the harmless values for
/// `repo_keys`, then `extra` (what the host itself needs, e.g. a transport for a push).
pub fn overrides(env: &mut Env, repo_keys: &[String]) {
    overrides_with(env, repo_keys, &[]);
}

/// [`overrides`] with `extra` keys last (they win over everything before them).
pub fn overrides_with(env: &mut Env, repo_keys: &[String], extra: &[(String, String)]) {
    let mut all: Vec<(String, String)> = FIXED
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for key in repo_keys {
        for (k, v) in harmless(key) {
            if !all.iter().any(|(have, _)| have.eq_ignore_ascii_case(&k)) {
                all.push((k, v.to_string()));
            }
        }
    }
    all.extend(extra.iter().cloned());
    env.set("GIT_CONFIG_COUNT", all.len().to_string());
    for (i, (k, v)) in all.into_iter().enumerate() {
        env.set(format!("GIT_CONFIG_KEY_{i}"), k);
        env.set(format!("GIT_CONFIG_VALUE_{i}"), v);
    }
}

/// Most config output read (names only; a config this large is itself suspicious).
const MAX_CONFIG_BYTES: usize = 4 << 20;

/// The names of every config key git sees in the repository at `spec.cwd` (with includes),
/// read by running `git config --list --null --includes --name-only` as `spec` describes
/// (the neutral environment and the run's confinement).
pub async fn repo_keys(spec: &Spec) -> Result<Vec<String>, Refusal> {
    let spec = Spec {
        program: spec.program.clone(),
        args: ["config", "--list", "--null", "--includes", "--name-only"]
            .map(String::from)
            .to_vec(),
        cwd: spec.cwd.clone(),
        env: spec.env.clone(),
        ruleset: spec.ruleset.clone(),
    };
    let mut run = spawn(&spec, false)?;
    let mut out = Vec::new();
    let read = async {
        let mut limited = (&mut run.stdout).take(MAX_CONFIG_BYTES as u64 + 1);
        limited.read_to_end(&mut out).await
    };
    let failed = |what: String| {
        Refusal::Failed(format!(
            "cannot read the repository's git config to neutralise it ({what}); the command was not run"
        ))
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| failed("git config took over 30 s".into()))?
        .map_err(|e| failed(e.to_string()))?;
    if out.len() > MAX_CONFIG_BYTES {
        return Err(failed(format!(
            "its config is over {MAX_CONFIG_BYTES} bytes"
        )));
    }
    let status = tokio::time::timeout(Duration::from_secs(30), run.child.wait())
        .await
        .map_err(|_| failed("git config did not exit".into()))?
        .map_err(|e| failed(e.to_string()))?;
    // Exit 1 with no output: no config at all (or not a repository) — nothing to neutralise.
    if !status.success() && !out.is_empty() {
        return Err(failed(format!("git config ended with {status}")));
    }
    Ok(out
        .split(|b| *b == 0)
        .filter(|k| !k.is_empty())
        .map(|k| String::from_utf8_lossy(k).trim().to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_keys_get_harmless_values() {
        assert_eq!(
            harmless("filter.LFS.smudge"),
            vec![
                ("filter.LFS.clean".to_string(), ""),
                ("filter.LFS.smudge".to_string(), ""),
                ("filter.LFS.process".to_string(), ""),
                ("filter.LFS.required".to_string(), "false"),
            ]
        );
        assert_eq!(harmless("diff.a.b.textconv")[0].0, "diff.a.b.textconv");
        assert_eq!(
            harmless("alias.st"),
            vec![("alias.st".to_string(), "version")]
        );
        assert_eq!(
            harmless("pager.log"),
            vec![("pager.log".to_string(), "false")]
        );
        assert!(harmless("user.name").is_empty());
        assert!(harmless("diff.renames").is_empty());
    }
}
