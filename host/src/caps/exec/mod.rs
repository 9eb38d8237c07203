//! `infra:host/exec`: programs the operator named, run confined (see `wit/host/exec.wit` and
//! [`crate::confine`]). This module checks the grants — program, root, each variable, profile,
//! the unsafe flag — records one capability event per run (target `"<program> <argv…>"`,
//! scrubbed and cut), and hands the prepared run to [`run`]; `run-all` does the same for each
//! command of a batch, a few at a time.

mod credentials;
pub mod place;
pub mod run;

pub use place::Place;

use std::sync::Arc;

use super::infra::host::exec::{Command, Host};
use super::infra::host::types::{CapError, ExecResult, KeyValue};
use super::{CallCtx, StoreState};
use crate::confine::env::{self, Env};
use crate::confine::home::RunHome;
use crate::confine::landlock::{Reach, Ruleset, with_target};
use crate::confine::program::Resolved;
use crate::confine::spawn::Spec;
use crate::confine::{Refusal, git, git_keys, guards, program, terraform};

/// Most characters of an event's target.
const TARGET_CHARS: usize = 200;

/// Programs of one `run-all` batch running at once: enough to overlap a plugin's independent
/// reads on a small machine, few enough that a batch cannot crowd out the server.
pub const RUN_ALL_PARALLEL: usize = 4;

/// A [`Refusal`] as the plugin sees it.
pub fn cap_error(r: Refusal) -> CapError {
    match r {
        Refusal::Denied(m) => CapError::Denied(m),
        Refusal::NotFound(m) => CapError::NotFound(m),
        Refusal::Invalid(m) => CapError::Invalid(m),
        Refusal::Failed(m) => CapError::Failed(m),
    }
}

/// `"<program> <argv…>"` as the audit record shows it: arguments with spaces or quotes quoted,
/// known secrets scrubbed, cut to [`TARGET_CHARS`].
pub fn target(call: &CallCtx, program: &str, args: &[String]) -> String {
    let mut text = program.to_string();
    for a in args {
        text.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
            text.push_str(&super::ssh::sh_quote(a));
        } else {
            text.push_str(a);
        }
    }
    let clean = call.shared.redactor.scrub_str(&text).into_owned();
    match clean.char_indices().nth(TARGET_CHARS) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

/// A run ready to start: what to execute and the home it owns (removed when this is dropped).
pub struct Prepared {
    /// The run.
    pub spec: Spec,
    /// Its `HOME`.
    pub home: RunHome,
}

impl CallCtx {
    /// Records a denial of `cap` on `target` and returns it as a `denied` error.
    pub fn deny(&self, cap: &str, target: &str, reason: String) -> CapError {
        let _ = self.decide(cap, target, crate::policy::Decision::Deny(reason.clone()));
        CapError::Denied(reason)
    }

    /// A refusal met after the grant checks: a denial is recorded as one; other kinds are the
    /// caller's to report.
    pub fn refusal(&self, cap: &str, target: &str, r: Refusal) -> CapError {
        match r {
            Refusal::Denied(m) => self.deny(cap, target, m),
            other => cap_error(other),
        }
    }

    /// Checks the guest's variables: valid names, not on the host's refused list, granted.
    fn exec_env(&self, target: &str, vars: &[KeyValue]) -> Result<(), CapError> {
        for kv in vars {
            if !env::valid_name(&kv.key) {
                return Err(CapError::Invalid(format!(
                    "env: '{}' is not a valid variable name (letters, digits and '_', not starting with a digit)",
                    kv.key
                )));
            }
            if env::refused(&kv.key) {
                return Err(self.deny(
                    "exec",
                    target,
                    format!(
                        "env: variable '{}' is set by the host or changes how programs load or what code they run, so a plugin may never set it (no grant allows it); leave it out",
                        kv.key
                    ),
                ));
            }
            self.decide(
                "exec",
                target,
                self.shared.policy.check_exec_env(&self.plugin, &kv.key),
            )
            .map_err(CapError::Denied)?;
        }
        Ok(())
    }

    /// Runs `cmd` under the plugin's exec grant.
    pub async fn exec_run(&self, cmd: Command) -> Result<ExecResult, CapError> {
        let target = target(self, &cmd.program, &cmd.args);
        self.require("exec", &target).map_err(CapError::Denied)?;
        let policy = &self.shared.policy;
        let flags = &self.shared.flags;
        if policy
            .exec_grant(&self.plugin)
            .is_some_and(|g| g.allow_unsafe)
            && !flags.unsafe_local
        {
            // An unsafe grant is a second lock on top of the flag: off, it grants nothing.
            return Err(self.deny("exec", &target, format!(
                "[plugin.{}.exec] says unsafe = true, which grants nothing unless infra runs with INFRA_UNSAFE_LOCAL=1; set it for trusted local work, or give the plugin a confined grant instead",
                self.plugin
            )));
        }
        self.decide(
            "exec",
            &target,
            policy.check_exec_program(&self.plugin, &cmd.program, flags),
        )
        .map_err(CapError::Denied)?;
        let place = self.exec_place("exec", &target, &cmd.root, cmd.cwd.as_deref())?;
        self.exec_env(&target, &cmd.env)?;
        if let Some(p) = &cmd.profile {
            self.decide(
                "exec",
                &target,
                policy.check_profile(&self.plugin, "exec", p),
            )
            .map_err(CapError::Denied)?;
        }
        let unsafe_ok = policy.exec_unsafe(&self.plugin, flags);
        let resolved = program::resolve(policy, &cmd.program, unsafe_ok)
            .map_err(|r| self.refusal("exec", &target, r))?;
        guards::check(resolved.file_name(), &cmd.args)
            .map_err(|r| self.refusal("exec", &target, r))?;
        // An unsafe grant (the `local` shell, with the flag) runs anything through `sh` anyway.
        if resolved.file_name() == "terraform"
            && !place.unsafe_mode
            && let Some(sub) = terraform::write_subcommand(&cmd.args)
        {
            self.require_terraform_write(&place.workspace(), &sub)
                .map_err(CapError::Denied)?;
        }
        let network = policy.exec_grant(&self.plugin).is_some_and(|g| g.network);

        let ev = self.event("exec", &target);
        let work = async {
            let prepared = self
                .prepare_run(
                    &resolved,
                    cmd.args.clone(),
                    &place,
                    network,
                    &cmd.env,
                    cmd.profile.as_deref(),
                    &[],
                )
                .await?;
            let opts = run::RunOpts {
                stdin: cmd.stdin,
                timeout_ms: cmd.timeout_ms,
                max_output: cmd.max_output,
                what: format!("program '{}'", cmd.program),
            };
            let out = run::run(self, &prepared.spec, opts).await;
            drop(prepared);
            out
        };
        match work.await {
            Ok((result, detail)) => {
                ev.ok(detail);
                Ok(result)
            }
            Err(CapError::Denied(m)) => Err(CapError::Denied(ev.deny(m))),
            Err(e) => {
                ev.fail(e.message());
                Err(e)
            }
        }
    }

    /// Runs each of `cmds` as [`CallCtx::exec_run`] does (same checks, confinement and audit
    /// event), up to [`RUN_ALL_PARALLEL`] at a time; results in the order of `cmds`.
    pub async fn exec_run_all(&self, cmds: Vec<Command>) -> Vec<Result<ExecResult, CapError>> {
        use futures::StreamExt;
        // Unordered, so a finished run frees its place at once even while an earlier one runs.
        let mut done: Vec<(usize, Result<ExecResult, CapError>)> =
            futures::stream::iter(cmds.into_iter().enumerate())
                .map(|(i, cmd)| async move { (i, self.exec_run(cmd).await) })
                .buffer_unordered(RUN_ALL_PARALLEL)
                .collect()
                .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }

    /// Builds the run: home, environment (host base, git neutralisation, credentials, the
    /// guest's granted variables), Landlock reach. `git_extra` are config keys the host itself
    /// sets last (a push's transport). With `network`, `place.ports` (when set) are the only
    /// TCP ports it may connect to.
    #[allow(clippy::too_many_arguments)]
    pub async fn prepare_run(
        &self,
        program: &Resolved,
        args: Vec<String>,
        place: &Place,
        network: bool,
        vars: &[KeyValue],
        profile: Option<&str>,
        git_extra: &[(String, String)],
    ) -> Result<Prepared, CapError> {
        let home = RunHome::new().map_err(cap_error)?;
        let mut env = if place.unsafe_mode {
            let mut e = Env::base(&real_home(), &std::env::temp_dir());
            if let Some(user) = std::env::var_os("USER") {
                e.set("USER", user);
            }
            e
        } else {
            Env::base(home.path(), &home.tmp())
        };
        for kv in vars {
            env.set(&kv.key, &kv.value);
        }
        let is_git = program.file_name() == "git";
        if is_git {
            git::base(&mut env, &place.root_dir, !place.writable);
        }
        if program.file_name() == "helm" {
            let plugins = home.path().join("helm-plugins");
            std::fs::create_dir(&plugins)
                .map_err(|e| CapError::Failed(format!("making the run's helm plugin dir: {e}")))?;
            env.set("HELM_PLUGINS", plugins);
        }
        if program.file_name() == "terraform" {
            terraform::base(
                &mut env,
                &place.root_dir,
                place.writable && !place.unsafe_mode,
            );
        }
        if let Some(name) = profile {
            credentials::inject(self, name, &home, &mut env)?;
        }
        let ruleset = self.ruleset(program, place, network, &home)?;
        let mut spec = Spec {
            program: program.path.clone(),
            args,
            cwd: place.cwd.clone(),
            env,
            ruleset,
        };
        if is_git {
            let ext_diff = home
                .write("ext-diff", git::EXT_DIFF_SCRIPT.as_bytes(), 0o700)
                .map_err(cap_error)?;
            let at = git_keys::Where {
                root: &place.root_dir,
                home: home.path(),
                scope: format!(
                    "writable={} network={network} unsafe={} extra={:?} ports={:?}",
                    place.writable, place.unsafe_mode, place.extra_write, place.ports
                ),
            };
            let keys = self
                .shared
                .git_keys
                .repo_keys(&spec, &at)
                .await
                .map_err(cap_error)?;
            git::overrides(&mut spec.env, &keys, &ext_diff.to_string_lossy(), git_extra);
        }
        Ok(Prepared { spec, home })
    }

    /// The Landlock ruleset of a run, or none for an unsafe grant with network.
    fn ruleset(
        &self,
        program: &Resolved,
        place: &Place,
        network: bool,
        home: &RunHome,
    ) -> Result<Option<Arc<Ruleset>>, CapError> {
        if place.unsafe_mode && network && place.ports.is_none() {
            return Ok(None);
        }
        let mut reach = Reach {
            network,
            files: !place.unsafe_mode,
            ports: place.ports.clone(),
            ..Reach::default()
        };
        reach.read.extend(with_target(&program.path));
        let root = with_target(&place.root_dir);
        if place.writable {
            reach.write.extend(root);
        } else {
            reach.read.extend(root);
        }
        if let Some(extra) = &place.extra_write {
            reach.write.extend(with_target(extra));
        }
        reach.write.push(home.path().to_path_buf());
        Ruleset::build(&reach)
            .map(|r| Some(Arc::new(r)))
            .map_err(cap_error)
    }
}

/// The server's own home, for unsafe runs.
fn real_home() -> std::path::PathBuf {
    std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/".into())
}

impl Host for StoreState {
    async fn run(&mut self, cmd: Command) -> Result<ExecResult, CapError> {
        self.call.exec_run(cmd).await
    }

    async fn run_all(&mut self, cmds: Vec<Command>) -> Vec<Result<ExecResult, CapError>> {
        self.call.exec_run_all(cmds).await
    }
}
