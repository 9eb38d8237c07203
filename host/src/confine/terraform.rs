//! Terraform under confinement: the options refused because they point terraform at code or a
//! directory the caller chooses, the environment the host sets for every terraform run (its
//! plugin cache, no update check), and which subcommands change infrastructure or state — those
//! run only under a guard approval for the working directory (`caps/exec`).
//!
//! What a configuration itself runs (`local-exec` provisioners, the `external` data source,
//! provider binaries) is confined like terraform: Landlock binds its children too.

use std::path::Path;

use super::Refusal;
use super::env::Env;

/// Options that load providers from a directory the caller names, or move terraform's working
/// directory elsewhere; Go's flag parser takes `-x` and `--x`, with `=value` or the next word.
const REFUSED_OPTIONS: &[&str] = &["chdir", "plugin-dir"];

/// Where the plugin cache lives, relative to the run's root: inside the root, so it survives
/// the run (the run's HOME does not), it is reachable under Landlock without widening it, and
/// what one root's configurations put there is never run by a configuration of another root.
pub const PLUGIN_CACHE: &str = ".terraform.d/plugin-cache";

/// Refuses options through which terraform would load code or work outside the granted place.
pub fn check(args: &[String]) -> Result<(), Refusal> {
    for arg in args {
        let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        let name = name.split_once('=').map_or(name, |(n, _)| n);
        if REFUSED_OPTIONS.contains(&name) {
            return Err(Refusal::Denied(format!(
                "args: terraform option -{name} loads providers from, or works in, a directory the caller chooses, which confined runs do not allow; run in the working directory (cwd) with the plugin cache the host sets"
            )));
        }
    }
    Ok(())
}

/// Sets terraform's environment: no update check or telemetry call home, automation mode, and
/// the root's plugin cache (made when the root is writable; a read-only root gets none).
pub fn base(env: &mut Env, root: &Path, writable: bool) {
    env.set("TF_IN_AUTOMATION", "1");
    env.set("CHECKPOINT_DISABLE", "1");
    if writable {
        let cache = root.join(PLUGIN_CACHE);
        if std::fs::create_dir_all(&cache).is_ok() {
            env.set("TF_PLUGIN_CACHE_DIR", cache);
        }
    }
}

/// The subcommand, when it changes infrastructure or state and so needs a guard approval:
/// `apply`, `destroy`, `import`, `refresh`, `taint`, `untaint`, `force-unlock`, the writing
/// `state` subcommands, `workspace delete`. Global options (`-chdir`, refused anyway) and
/// `-help`/`-version` come before it.
pub fn write_subcommand(args: &[String]) -> Option<String> {
    let mut words = args.iter().skip_while(|a| a.starts_with('-'));
    let sub = words.next()?.as_str();
    let next = words.find(|a| !a.starts_with('-')).map(String::as_str);
    let writes = match sub {
        "apply" | "destroy" | "import" | "refresh" | "taint" | "untaint" | "force-unlock" => true,
        "state" => matches!(next, Some("mv" | "rm" | "push" | "replace-provider")),
        "workspace" => matches!(next, Some("delete")),
        _ => false,
    };
    match (writes, sub, next) {
        (false, _, _) => None,
        (true, "state" | "workspace", Some(n)) => Some(format!("{sub} {n}")),
        (true, _, _) => Some(sub.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_naming_code_or_another_directory_are_refused() {
        for bad in [
            &["-chdir=/etc", "plan"][..],
            &["--chdir", "/", "apply"],
            &["init", "-plugin-dir=/tmp/p"],
            &["init", "--plugin-dir", "x"],
        ] {
            assert!(check(&v(bad)).is_err(), "{bad:?}");
        }
        for ok in [
            &["plan", "-input=false", "-out=.infra-terraform/p.tfplan"][..],
            &["init", "-input=false", "-no-color"],
            &["show", "-json", "x.tfplan"],
        ] {
            assert!(check(&v(ok)).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn writes_are_told_from_reads() {
        let w = |a: &[&str]| write_subcommand(&v(a));
        assert_eq!(
            w(&["apply", "-input=false", "p.tfplan"]).as_deref(),
            Some("apply")
        );
        assert_eq!(w(&["-no-color", "destroy"]).as_deref(), Some("destroy"));
        assert_eq!(w(&["state", "rm", "x.y"]).as_deref(), Some("state rm"));
        assert_eq!(
            w(&["workspace", "delete", "w"]).as_deref(),
            Some("workspace delete")
        );
        assert_eq!(w(&["import", "a.b", "id"]).as_deref(), Some("import"));
        for read in [
            &["plan", "-out=p"][..],
            &["init", "-input=false"],
            &["show", "-json", "p"],
            &["state", "list"],
            &["workspace", "select", "w"],
            &["validate"],
            &[],
        ] {
            assert_eq!(w(read), None, "{read:?}");
        }
    }
}
