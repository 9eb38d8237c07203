//! Arguments refused per program: the options and subcommands through which `git`, `kubectl`,
//! `kustomize`, `helm` and `terraform` would run code the plugin chose (a configured command, a plugin, an
//! editor, a remote helper), even with their configuration neutralised. Keyed on the resolved
//! file's name, so renaming a program in `[programs]` changes nothing.

use super::Refusal;

/// git subcommands that run user-configured or user-given programs by design.
const GIT_SUBCOMMANDS: &[&str] = &[
    "submodule",
    "difftool",
    "mergetool",
    "filter-branch",
    "daemon",
    "instaweb",
    "web--browse",
    "send-email",
    "help",
    "credential",
    "credential-store",
    "credential-cache",
    "credential-cache--daemon",
    "upload-pack",
    "receive-pack",
    "upload-archive",
    "shell",
    "remote-ext",
    "remote-fd",
    "fsmonitor--daemon",
    "archimport",
    "cvsimport",
    "cvsserver",
    "cvsexportcommit",
    "svn",
    "p4",
    "quiltimport",
];

/// git options before the subcommand that apply a config, or point at another repository or
/// git installation.
const GIT_GLOBAL: &[&str] = &[
    "-c",
    "--config-env",
    "--exec-path",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--super-prefix",
    "--help",
];

/// git options anywhere that name a program to run or reach code the host does not neutralise,
/// each with the shortest abbreviation git would accept for it without colliding with an
/// ordinary option (git takes unambiguous prefixes of long options).
const GIT_OPTIONS: &[(&str, &str)] = &[
    ("--upload-pack", "--upl"),
    ("--receive-pack", "--rece"),
    ("--exec", "--exe"),
    ("--exec-path", "--exec-"),
    ("--config-env", "--config-"),
    ("--open-files-in-pager", "--op"),
    ("--ext-diff", "--ext"),
    ("--extcmd", "--extc"),
    ("--textconv", "--textc"),
    ("--recurse-submodules", "--recu"),
    ("--tool", "--too"),
    ("--help", "--hel"),
];

/// kubectl/kustomize options that run plugins, exec functions, helm, or read another kubeconfig.
const KUBE_OPTIONS: &[&str] = &[
    "--enable-alpha-plugins",
    "--enable-exec",
    "--enable-helm",
    "--helm-command",
    "--kubeconfig",
    "--exec-command",
];

/// helm options that run a program or read another kubeconfig.
const HELM_OPTIONS: &[&str] = &["--post-renderer", "--post-renderer-args", "--kubeconfig"];

/// Refuses `args` when the program `file` (a resolved file name such as `git`) would run code
/// the plugin chose through them.
pub fn check(file: &str, args: &[String]) -> Result<(), Refusal> {
    match file {
        "git" => git(args),
        "kubectl" | "kustomize" => options(file, args, KUBE_OPTIONS),
        "helm" => options(file, args, HELM_OPTIONS),
        "terraform" => super::terraform::check(args),
        _ => Ok(()),
    }
}

fn refuse(file: &str, what: &str) -> Refusal {
    Refusal::Denied(format!(
        "args: {file} {what} runs a program or configuration the caller chooses, which confined runs do not allow; use the plugin's own actions, or an unsafe grant for trusted local work"
    ))
}

/// `arg` is `opt`, or `opt=…`, or (for a short option) `opt…` glued.
fn is_option(arg: &str, opt: &str) -> bool {
    arg == opt
        || arg.strip_prefix(opt).is_some_and(|rest| {
            rest.starts_with('=') || (!opt.starts_with("--") && !rest.is_empty())
        })
}

fn options(file: &str, args: &[String], refused: &[&str]) -> Result<(), Refusal> {
    // After `--` come operands (file names), not options.
    for arg in args.iter().take_while(|a| *a != "--") {
        if let Some(opt) = refused.iter().find(|o| is_option(arg, o)) {
            return Err(refuse(file, &format!("option {opt}")));
        }
    }
    Ok(())
}

fn git(args: &[String]) -> Result<(), Refusal> {
    // Global options come before the subcommand; `-C <dir>` is the only one taking a separate
    // value that is not refused outright.
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        if args[i] == "-C" {
            i += 1;
        }
        i += 1;
    }
    let sub = args.get(i).map(String::as_str).unwrap_or("");
    if GIT_SUBCOMMANDS.contains(&sub) {
        return Err(refuse("git", &format!("subcommand '{sub}'")));
    }
    let rest = args.get(i + 1..).unwrap_or_default();
    match sub {
        "bisect" if rest.first().is_some_and(|a| a == "run") => {
            return Err(refuse("git", "bisect run"));
        }
        "rebase" if rest.iter().any(|a| a == "-x" || a.starts_with("-x")) => {
            return Err(refuse("git", "rebase -x"));
        }
        "grep" if rest.iter().any(|a| is_option(a, "-O")) => {
            return Err(refuse("git", "grep -O"));
        }
        "fetch" | "clone" | "pull" | "ls-remote" | "archive"
            if rest.iter().any(|a| is_option(a, "-u")) =>
        {
            return Err(refuse("git", &format!("{sub} -u")));
        }
        _ => {}
    }
    for arg in &args[..i] {
        if let Some(opt) = GIT_GLOBAL.iter().find(|o| is_option(arg, o)) {
            return Err(refuse("git", &format!("option {opt}")));
        }
    }
    for arg in args.iter().take_while(|a| *a != "--") {
        let name = arg.split('=').next().unwrap_or(arg);
        let hit = GIT_OPTIONS
            .iter()
            .find(|(full, min)| name.starts_with(min) && full.starts_with(name));
        if let Some((opt, _)) = hit {
            return Err(refuse("git", &format!("option {opt}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn git_refuses_code_running_forms_and_allows_ordinary_work() {
        for bad in [
            &["-c", "core.pager=sh"][..],
            &["-ccore.pager=sh", "log"],
            &["--config-env=core.pager=X", "log"],
            &["--exec-path=/tmp", "status"],
            &["submodule", "update"],
            &["-C", "sub", "difftool"],
            &["bisect", "run", "make"],
            &["rebase", "-x", "make", "main"],
            &["fetch", "--upload-pack=touch /tmp/x", "origin"],
            &["fetch", "--upload-p=touch", "origin"],
            &["grep", "-Ovim", "x"],
            &["status", "--help"],
            &["help", "status"],
            &["diff", "--ext-diff"],
            &["--git-dir=/etc", "log"],
        ] {
            assert!(check("git", &v(bad)).is_err(), "{bad:?}");
        }
        for ok in [
            &["status", "--porcelain=v2"][..],
            &[
                "log",
                "-c",
                "-S",
                "needle",
                "--text",
                "--exclude=x",
                "--output-indicator-new=+",
            ],
            &["commit", "-c", "HEAD", "--reuse-message=HEAD"],
            &["-C", "sub", "log", "-n", "5", "--format=%H %s"],
            &["diff", "--stat", "HEAD~1", "--", "-c"],
            &["commit", "-m", "a message with spaces", "--allow-empty"],
            &["show", "HEAD:file"],
            &["log", "--stat"],
        ] {
            assert!(check("git", &v(ok)).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn kube_and_helm_guards() {
        assert!(check("kubectl", &v(&["kustomize", "--enable-helm", "."])).is_err());
        assert!(
            check(
                "kubectl",
                &v(&["--kubeconfig=/root/.kube/config", "get", "po"])
            )
            .is_err()
        );
        assert!(check("kustomize", &v(&["build", "--enable-alpha-plugins"])).is_err());
        assert!(check("helm", &v(&["template", "x", ".", "--post-renderer", "sh"])).is_err());
        assert!(check("kubectl", &v(&["kustomize", "overlays/prod"])).is_ok());
        assert!(check("cat", &v(&["-c", "--exec"])).is_ok());
    }
}
