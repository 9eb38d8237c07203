//! The environment a confined program starts with: cleared, then set by the host. A plugin may
//! add variables its grant names, but never one the host sets or one that changes how programs
//! load or what code they run — those are refused (and audited by the caller), not dropped.

use std::ffi::OsString;
use std::path::Path;

/// The fixed `PATH` of every confined program.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Names the host sets itself or that make a program load or run other code. A trailing `*`
/// matches any rest of the name.
const REFUSED: &[&str] = &[
    // The dynamic loader and libc.
    "LD_*",
    "DYLD_*",
    "GLIBC_TUNABLES",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "MALLOC_*",
    // What the host sets.
    "PATH",
    "HOME",
    "TMPDIR",
    "TMP",
    "TEMP",
    "LANG",
    "USER",
    "LOGNAME",
    "SHELL",
    "XDG_*",
    // Shells and interpreters that run a file or code named by a variable.
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "PYTHON*",
    "PERL5*",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "LESSOPEN",
    "LESSCLOSE",
    "PAGER",
    "EDITOR",
    "VISUAL",
    // git: what runs code, finds config or repositories elsewhere, or carries credentials.
    "GIT_SSH*",
    "GIT_CONFIG*",
    "GIT_EXEC_PATH",
    "GIT_ASKPASS",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_PROXY_COMMAND",
    "GIT_TERMINAL_PROMPT",
    "GIT_OPTIONAL_LOCKS",
    "GIT_ATTR_SOURCE",
    "GIT_ALLOW_PROTOCOL",
    "GIT_PROTOCOL_FROM_USER",
    "GIT_TRACE*",
    "GIT_TEMPLATE_DIR",
    "SSH_*",
    // kubectl, kustomize, helm: config and plugins that run binaries.
    "KUBECONFIG",
    "KUSTOMIZE_PLUGIN_HOME",
    "HELM_*",
    // terraform: a CLI config can name provider binaries (dev_overrides, provider_installation)
    // and credentials; extra arguments, the plugin cache and the data directory are the host's;
    // reattach points terraform at provider processes someone else started; logs can print
    // sensitive values.
    "TF_CLI_CONFIG_FILE",
    "TERRAFORM_CONFIG",
    "TF_CLI_ARGS*",
    "TF_PLUGIN_CACHE*",
    "TF_DATA_DIR",
    "TF_REATTACH_PROVIDERS",
    "TF_LOG*",
    "TF_TOKEN_*",
    "TF_IN_AUTOMATION",
    "CHECKPOINT_DISABLE",
];

/// Whether the plugin may never set `name`, whatever its grant says.
pub fn refused(name: &str) -> bool {
    REFUSED.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *p,
    })
}

/// A variable name a shell would accept: letters, digits and `_`, not starting with a digit.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The environment of one run, built up by the host.
#[derive(Debug, Default, Clone)]
pub struct Env {
    vars: Vec<(OsString, OsString)>,
}

impl Env {
    /// The host's base: `PATH`, `HOME` and `TMPDIR` at `home`, `LANG=C.UTF-8`.
    pub fn base(home: &Path, tmp: &Path) -> Env {
        let mut env = Env::default();
        env.set("PATH", PATH);
        env.set("HOME", home);
        env.set("TMPDIR", tmp);
        env.set("LANG", "C.UTF-8");
        env
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        let key = key.into();
        let value = value.into();
        match self.vars.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((key, value)),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&OsString> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Every variable, in the order set.
    pub fn vars(&self) -> impl Iterator<Item = (&OsString, &OsString)> {
        self.vars.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaders_and_code_runners_are_refused_and_plain_names_are_not() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "GIT_SSH_COMMAND",
            "GIT_SSH",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "PATH",
            "HOME",
            "BASH_ENV",
            "BASH_FUNC_x%%",
            "PYTHONSTARTUP",
            "NODE_OPTIONS",
            "KUBECONFIG",
            "HELM_PLUGINS",
            "GIT_EXTERNAL_DIFF",
            "SSH_ASKPASS",
            "TF_CLI_CONFIG_FILE",
            "TF_CLI_ARGS_apply",
            "TF_PLUGIN_CACHE_DIR",
            "TF_REATTACH_PROVIDERS",
            "TF_LOG_PATH",
        ] {
            assert!(refused(name), "{name}");
        }
        for name in [
            "GIT_AUTHOR_NAME",
            "GIT_COMMITTER_EMAIL",
            "TZ",
            "FOO",
            "TF_VAR_region",
        ] {
            assert!(!refused(name), "{name}");
        }
    }

    #[test]
    fn names_are_identifiers() {
        assert!(valid_name("GIT_AUTHOR_NAME") && valid_name("_x1"));
        for bad in ["", "1A", "A=B", "A B", "BASH_FUNC_x%%", "Ä"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
