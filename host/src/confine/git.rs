//! What `git` would run from a repository, switched off. Applied to every run whose program file
//! is `git` (exec and push alike): no system or global config, no prompts, no pager, discovery
//! stopped at the root, and — through `GIT_CONFIG_COUNT`, which outranks the repository's own
//! config — hooks, fsmonitor, editors, askpass, credential helpers, external diff, signing
//! programs and transports set to harmless values, plus every driver, alias, pager and
//! upload/receive-pack the repository's config defines (read with its includes, by git itself
//! under this same neutral environment and confinement, which runs nothing).

use std::path::Path;
use std::time::Duration;

use super::Refusal;
use super::env::Env;
use super::spawn::{Spec, output};

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

/// What stands in for an external diff command the repository configures: git's own diff of
/// the two files git hands it (so the diff still shows the real change), never the repository's
/// program. Written into the run's home by the host.
pub const EXT_DIFF_SCRIPT: &str = "#!/bin/sh\n# infra: the repository's external diff, replaced by git's own.\n[ $# -ge 7 ] || exit 0\ngit diff --no-index --no-ext-diff --no-textconv -- \"$2\" \"$5\"\nexit 0\n";

/// For a key the repository's config defines, the harmless values that replace it (none when
/// the key runs nothing); `ext_diff` is the path of [`EXT_DIFF_SCRIPT`].
fn harmless(key: &str, ext_diff: &str) -> Vec<(String, String)> {
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
    let owned = |v: Vec<(String, &str)>| {
        v.into_iter()
            .map(|(k, val)| (k, val.to_string()))
            .collect::<Vec<_>>()
    };
    if lower == "diff.external" {
        return vec![(key.to_string(), ext_diff.to_string())];
    }
    if section == "diff" && var == "command" {
        return match sub_of(var) {
            Some(d) => vec![(format!("diff.{d}.command"), ext_diff.to_string())],
            None => Vec::new(),
        };
    }
    owned(match section {
        "filter" => match sub_of(var) {
            Some(d) => vec![
                (format!("filter.{d}.clean"), ""),
                (format!("filter.{d}.smudge"), ""),
                (format!("filter.{d}.process"), ""),
                (format!("filter.{d}.required"), "false"),
            ],
            None => Vec::new(),
        },
        "diff" if var == "textconv" => match sub_of(var) {
            // `cat` prints the file as it is: the diff shows its real content.
            Some(d) => vec![(format!("diff.{d}.textconv"), "cat")],
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
    })
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
    overrides(env, &[], "", &[]);
}

/// Sets `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n`: the fixed keys, the harmless values for
/// `repo_keys` (`ext_diff`: the path of [`EXT_DIFF_SCRIPT`]), then `extra` (what the host itself
/// needs, e.g. a transport for a push), which win over everything before them.
pub fn overrides(env: &mut Env, repo_keys: &[String], ext_diff: &str, extra: &[(String, String)]) {
    let mut all: Vec<(String, String)> = FIXED
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for key in repo_keys {
        for (k, v) in harmless(key, ext_diff) {
            if !all.iter().any(|(have, _)| have.eq_ignore_ascii_case(&k)) {
                all.push((k, v));
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

/// How long the host's own git helper runs may take.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// `spec` with other arguments: a host helper run of the same git, same place, same env.
pub fn helper(spec: &Spec, args: &[&str]) -> Spec {
    Spec {
        program: spec.program.clone(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: spec.cwd.clone(),
        env: spec.env.clone(),
        ruleset: spec.ruleset.clone(),
    }
}

/// The global options among `args` (those before the subcommand, with `-C`'s directory), in
/// order: `-C` and `--bare` decide which repository the run really works on.
pub fn global_options(args: &[String]) -> Vec<String> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        opts.push(args[i].clone());
        if args[i] == "-C" {
            opts.extend(args.get(i + 1).cloned());
            i += 1;
        }
        i += 1;
    }
    opts
}

/// Global options that change neither which repository a run works on nor which config it
/// reads: a run with only these may use the repository's remembered config keys.
const STAYING_OPTIONS: &[&str] = &["--no-optional-locks"];

/// True when `args` have a global option that may move the run to another repository or config
/// (`-C`, `--bare`, …: anything but [`STAYING_OPTIONS`]).
pub fn moves_repository(args: &[String]) -> bool {
    global_options(args)
        .iter()
        .any(|o| !STAYING_OPTIONS.contains(&o.as_str()))
}

/// One config key git sees: where it came from (`file:<path>`, `command line:`, …) and its name.
pub struct ConfigKey {
    /// git's `--show-origin` text, as bytes (a path need not be UTF-8).
    pub origin: Vec<u8>,
    /// The key's name, e.g. `filter.lfs.smudge`.
    pub name: String,
}

/// Every config key git sees in the repository the run at `spec` works on (its cwd, moved by the
/// run's own global options such as `-C`), with includes, read by running `git config --list
/// --null --includes --show-origin --name-only` as `spec` describes (the neutral environment and
/// the run's confinement).
pub async fn config_keys(spec: &Spec) -> Result<Vec<ConfigKey>, Refusal> {
    let mut args = global_options(&spec.args);
    args.extend(
        [
            "config",
            "--list",
            "--null",
            "--includes",
            "--show-origin",
            "--name-only",
        ]
        .iter()
        .map(|a| a.to_string()),
    );
    let list = Spec {
        args,
        ..helper(spec, &[])
    };
    let (status, out) = output(&list, MAX_CONFIG_BYTES, HELPER_TIMEOUT).await?;
    // Exit 1 with no output: no config at all (or not a repository) — nothing to neutralise.
    if !status.success() && !out.is_empty() {
        return Err(Refusal::Failed(format!(
            "cannot read the repository's git config to neutralise it (git config ended with {status}); the command was not run"
        )));
    }
    let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut keys = Vec::new();
    while let (Some(origin), Some(name)) = (fields.next(), fields.next()) {
        keys.push(ConfigKey {
            origin: origin.to_vec(),
            name: String::from_utf8_lossy(name).trim().to_string(),
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_keys_get_harmless_values() {
        let h = |k: &str| harmless(k, "/run/x/ext-diff");
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            h("filter.LFS.smudge"),
            pairs(&[
                ("filter.LFS.clean", ""),
                ("filter.LFS.smudge", ""),
                ("filter.LFS.process", ""),
                ("filter.LFS.required", "false"),
            ])
        );
        assert_eq!(h("diff.a.b.textconv")[0].0, "diff.a.b.textconv");
        assert_eq!(
            h("diff.x.command"),
            pairs(&[("diff.x.command", "/run/x/ext-diff")])
        );
        assert_eq!(
            h("diff.external"),
            pairs(&[("diff.external", "/run/x/ext-diff")])
        );
        assert_eq!(h("alias.st"), pairs(&[("alias.st", "version")]));
        assert_eq!(h("pager.log"), pairs(&[("pager.log", "false")]));
        assert!(h("user.name").is_empty());
        assert!(h("diff.renames").is_empty());
    }

    #[test]
    fn global_options_are_the_ones_before_the_subcommand() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            global_options(&a(&["-C", "sub", "--bare", "log", "-C", "x"])),
            a(&["-C", "sub", "--bare"])
        );
        assert!(global_options(&a(&["diff", "--stat"])).is_empty());
        assert_eq!(global_options(&a(&["-C"])), a(&["-C"]));
    }

    #[test]
    fn only_options_that_keep_the_repository_keep_the_remembered_keys() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!moves_repository(&a(&["status", "-C", "x"])));
        assert!(!moves_repository(&a(&["--no-optional-locks", "status"])));
        assert!(moves_repository(&a(&[
            "--no-optional-locks",
            "-C",
            "x",
            "status"
        ])));
        assert!(moves_repository(&a(&["--bare", "log"])));
        assert!(moves_repository(&a(&["--git-dir=x", "log"])));
        assert!(moves_repository(&a(&[
            "--no-optional-locks",
            "--work-tree=y",
            "diff"
        ])));
    }
}
