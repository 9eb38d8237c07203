//! `infra:host/git`: pushes done by the host (see `wit/host/git.wit`). The host asks git itself
//! for the remote's push URL (under the neutral environment), proves git's URL rewriting leaves
//! that URL as it is (so the URL checked against `[plugin.<name>.git] remotes` is the URL used),
//! then runs `git push <url> <refspecs>` — the URL, never the remote name — confined like
//! `exec`, with TCP allowed for this one process and only to the URL's port, only the URL's
//! transport switched on, and the profile's credentials. One event per push, target
//! `"push <url>"`.

use std::path::PathBuf;

use super::exec::place::RootGrant;
use super::exec::run::{self, RunOpts};
use super::exec::{Place, cap_error};
use super::infra::host::git::{Host, PushRequest, PushResult};
use super::infra::host::types::CapError;
use super::{CallCtx, StoreState};
use crate::confine::git::{HELPER_TIMEOUT, helper};
use crate::confine::git_url::{self, file_path, rewrite_for_push, transport};
use crate::confine::program::{self, Resolved};
use crate::confine::spawn::{Spec, output};
use crate::policy::Decision;

/// Bytes kept inline per stream of `git push`'s output.
const PUSH_OUTPUT: u64 = 64 * 1024;
/// Most bytes of a URL or ref name the host reads back from git.
const SMALL: usize = 64 * 1024;

impl CallCtx {
    /// Pushes under the plugin's git grant.
    pub async fn git_push(&self, req: PushRequest) -> Result<PushResult, CapError> {
        let early = format!("push {}", req.remote);
        self.require("git", &early).map_err(CapError::Denied)?;
        check_words(&req)?;
        let policy = &self.shared.policy;
        let force = req.force || req.refspecs.iter().any(|r| r.starts_with('+'));
        if force && !policy.git_force(&self.plugin) {
            return Err(self.deny("git", &early, format!(
                "force: plugin '{}' may not force-push (asked with force = true or a '+' refspec); the operator allows it with force = true under [plugin.{}.git] in {}",
                self.plugin, self.plugin, policy.origin()
            )));
        }
        if force && !req.force {
            return Err(CapError::Invalid(
                "refspecs: a '+' refspec force-pushes; set force = true in the request to say so"
                    .into(),
            ));
        }
        let place = self.push_place(&early, &req)?;
        if let Some(p) = &req.profile {
            self.decide("git", &early, policy.check_profile(&self.plugin, "git", p))
                .map_err(CapError::Denied)?;
        }
        let git = git_program(self)?;
        // First pass, no network: read the URL and the rewrite rules.
        let probe = self
            .prepare_run(&git, Vec::new(), &place, false, &[], None, &[])
            .await?;
        let url = push_url(&probe.spec, &req.remote).await?;
        // A password written into the remote's URL is a credential like a profile's: from here
        // on it is scrubbed from the event, the result, errors and git's own output.
        for secret in git_url::userinfo_password(&url) {
            self.shared.redactor.add(&secret);
        }
        let rules = rewrite_rules(&probe.spec).await?;
        let refspecs = match req.refspecs.is_empty() {
            false => req.refspecs.clone(),
            true => vec![current_refspec(&probe.spec).await?],
        };
        let leases = match force {
            true => leases(&probe.spec, &req.remote, &refspecs).await?,
            false => Vec::new(),
        };
        drop(probe);
        let target = format!("push {}", self.shared.redactor.scrub_str(&url));
        let used = rewrite_for_push(&url, &rules);
        if used != url {
            return Err(self.deny("git", &target, format!(
                "remote: the repository's config rewrites '{url}' again (url.*.insteadOf / pushInsteadOf) to '{used}', so the URL checked would not be the URL used; remove that rewrite from the repository's config"
            )));
        }
        self.decide("git", &target, policy.check_git_remote(&self.plugin, &url))
            .map_err(CapError::Denied)?;
        let Some(scheme) = transport(&url) else {
            return Err(self.deny("git", &target, format!(
                "remote: '{url}' uses a transport the host does not push over (only file, ssh, https, http, git); use a plain URL"
            )));
        };

        let ev = self.event("git", &target);
        let work = async {
            let mut place = place.clone();
            let extra = vec![(format!("protocol.{scheme}.allow"), "always".to_string())];
            if scheme == "file" {
                // The remote repository is written by git-receive-pack, a child of this push.
                place.extra_write = file_path(&url).map(PathBuf::from);
            }
            // TCP to the URL's port only (none at all for a file URL).
            place.ports = Some(git_url::port(&url).into_iter().collect());
            let mut args = vec!["push".to_string(), "--porcelain".into()];
            let mut specs = refspecs.clone();
            if force {
                // Pushing to a URL leaves git no remote-tracking ref to lease against: the
                // host names each expectation (what the remote had at the last fetch).
                args.extend(leases.iter().cloned());
                for s in &mut specs {
                    *s = s.trim_start_matches('+').to_string();
                }
            }
            args.push("--".into());
            args.push(url.clone());
            args.extend(specs);
            let prepared = self
                .prepare_run(
                    &git,
                    args,
                    &place,
                    true,
                    &[],
                    req.profile.as_deref(),
                    &extra,
                )
                .await?;
            let opts = RunOpts {
                stdin: None,
                timeout_ms: req.timeout_ms,
                max_output: PUSH_OUTPUT,
                what: "git push".into(),
            };
            run::run(self, &prepared.spec, opts).await
        };
        match work.await {
            Ok((output, detail)) => {
                ev.ok(detail);
                Ok(PushResult { url, output })
            }
            Err(CapError::Denied(m)) => Err(CapError::Denied(ev.deny(m))),
            Err(e) => {
                ev.fail(e.message());
                Err(e)
            }
        }
    }

    /// The repository's place: a root granted under the plugin's `exec` or `fs` roots.
    fn push_place(&self, target: &str, req: &PushRequest) -> Result<Place, CapError> {
        let policy = &self.shared.policy;
        let granted = policy.check_exec_root(&self.plugin, &req.root).is_allowed()
            || policy.check_fs_root(&self.plugin, &req.root).is_allowed();
        let decision = if granted {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "policy: plugin '{}' has no grant for root '{}'; a push needs the repository's root under [plugin.{}.exec] roots or [plugin.{}.fs] roots in {}",
                self.plugin,
                req.root,
                self.plugin,
                self.plugin,
                policy.origin()
            ))
        };
        let grant = RootGrant {
            decision,
            unsafe_ok: false,
            read_only: true,
        };
        self.place("git", target, &req.root, Some(&req.path), grant)
    }
}

/// Remote names and refspecs are words, never options.
fn check_words(req: &PushRequest) -> Result<(), CapError> {
    let name_ok = !req.remote.is_empty()
        && !req.remote.starts_with('-')
        && req
            .remote
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok {
        return Err(CapError::Invalid(format!(
            "remote: '{}' is not a remote name (letters, digits, '-', '_', '.'); name a remote of the repository, e.g. origin",
            req.remote
        )));
    }
    if let Some(bad) = req
        .refspecs
        .iter()
        .find(|r| r.is_empty() || r.starts_with('-') || r.contains(char::is_whitespace))
    {
        return Err(CapError::Invalid(format!(
            "refspecs: '{bad}' is not a refspec (e.g. refs/heads/feature:refs/heads/feature)"
        )));
    }
    Ok(())
}

/// The git the host pushes with: `[programs] git` (pin checked), else git on the fixed PATH.
fn git_program(call: &CallCtx) -> Result<Resolved, CapError> {
    let policy = &call.shared.policy;
    if policy.program("git").is_some() {
        return program::resolve(policy, "git", false).map_err(cap_error);
    }
    std::env::split_paths(crate::confine::env::PATH)
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .map(|path| Resolved {
            name: "git".into(),
            path,
        })
        .ok_or_else(|| {
            CapError::NotFound(
                "git is not installed on this host (not in /usr/local/bin, /usr/bin or /bin); install it or name it under [programs] git".into(),
            )
        })
}

/// Runs a git helper in the repository; its stdout, trimmed, when it succeeds.
async fn ask(spec: &Spec, args: &[&str]) -> Result<Option<String>, CapError> {
    let (status, out) = output(&helper(spec, args), SMALL, HELPER_TIMEOUT)
        .await
        .map_err(cap_error)?;
    Ok(status
        .success()
        .then(|| String::from_utf8_lossy(&out).trim().to_string()))
}

/// The push URL git has for `remote`.
async fn push_url(spec: &Spec, remote: &str) -> Result<String, CapError> {
    match ask(spec, &["remote", "get-url", "--push", "--", remote]).await? {
        Some(url) if !url.is_empty() && !url.contains('\n') => Ok(url),
        Some(url) if url.contains('\n') => Err(CapError::Invalid(format!(
            "remote: '{remote}' has several push URLs; the host pushes to exactly one — keep one pushurl"
        ))),
        _ => Err(CapError::NotFound(format!(
            "remote: the repository has no remote '{remote}' (git remote get-url failed); add it with `git remote add`"
        ))),
    }
}

/// The repository's `url.*` rewrite rules, with includes.
async fn rewrite_rules(spec: &Spec) -> Result<Vec<git_url::Rule>, CapError> {
    let args = ["config", "-z", "--includes", "--get-regexp", r"^url\."];
    let (_, out) = output(&helper(spec, &args), SMALL, HELPER_TIMEOUT)
        .await
        .map_err(cap_error)?;
    Ok(git_url::rules(&out))
}

/// `--force-with-lease=<dst>:<sha>` for each refspec: the remote-tracking ref of `remote` for
/// its destination, as the repository last fetched it.
async fn leases(spec: &Spec, remote: &str, refspecs: &[String]) -> Result<Vec<String>, CapError> {
    let mut out = Vec::new();
    for r in refspecs {
        let dst = r.trim_start_matches('+').rsplit(':').next().unwrap_or(r);
        let dst = if dst.starts_with("refs/") {
            dst.to_string()
        } else {
            format!("refs/heads/{dst}")
        };
        let Some(branch) = dst.strip_prefix("refs/heads/") else {
            return Err(CapError::Invalid(format!(
                "refspecs: a force push of '{dst}' needs a branch (refs/heads/…) to lease against"
            )));
        };
        let tracking = format!("refs/remotes/{remote}/{branch}");
        let Some(sha) = ask(spec, &["rev-parse", "--verify", "-q", &tracking]).await? else {
            return Err(CapError::Invalid(format!(
                "force: the repository has no {tracking}, so the host cannot tell what the force push would overwrite; fetch '{remote}' first"
            )));
        };
        out.push(format!("--force-with-lease={dst}:{sha}"));
    }
    Ok(out)
}

/// `refs/heads/<branch>:<its upstream's ref, or the same name>` for the current branch.
async fn current_refspec(spec: &Spec) -> Result<String, CapError> {
    let Some(head) = ask(spec, &["symbolic-ref", "-q", "HEAD"]).await? else {
        return Err(CapError::Invalid(
            "refspecs: HEAD is detached, so there is no current branch to push; give refspecs"
                .into(),
        ));
    };
    let branch = head.trim_start_matches("refs/heads/");
    let merge = ask(spec, &["config", &format!("branch.{branch}.merge")])
        .await?
        .filter(|m| m.starts_with("refs/"))
        .unwrap_or_else(|| head.clone());
    Ok(format!("{head}:{merge}"))
}

impl Host for StoreState {
    async fn push(&mut self, req: PushRequest) -> Result<PushResult, CapError> {
        self.call.git_push(req).await
    }
}
