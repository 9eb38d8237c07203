//! A forge's pull-request API (GitHub's REST shape, which Gitea serves too) through the host's
//! `http` capability with a profile: the profile holds the base URL and the token, the host
//! injects it, and this code never sees it.

use infra_sdk::kube::{encode, query_string};
use infra_sdk::prelude::*;

use crate::rest::Rest;

/// Most bytes of a forge answer read.
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// A pull request as `propose` reports it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PullRequest {
    /// Its number on the forge.
    pub number: u64,
    /// Its web page.
    pub url: String,
    /// `open` or `closed`.
    pub state: String,
    /// The commit its head branch is at, as the forge sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// It was already open for this branch (this call opened none).
    pub existing: bool,
    /// It has been merged.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub merged: bool,
    /// The commit the merge made on the base branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_commit_sha: Option<String>,
}

/// One repository on a forge.
pub struct Forge {
    profile: String,
    repository: String,
    timeout_ms: u32,
}

/// Checks `owner/name`: two segments of letters, digits, `-`, `_`, `.` (not `.` or `..`), so
/// it stays one path of the API.
pub fn check_repository(field: &str, repository: &str) -> Result<(), ToolError> {
    let segment = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match repository.split_once('/') {
        Some((o, n)) if segment(o) && segment(n) => Ok(()),
        _ => Err(ToolError::invalid(
            field,
            format!(
                "{repository:?} is not a forge repository: give `owner/name` (e.g. `acme/deploy`)"
            ),
        )),
    }
}

fn pull(v: &Value, existing: bool) -> Option<PullRequest> {
    Some(PullRequest {
        number: v["number"].as_u64()?,
        url: v["html_url"].as_str().unwrap_or_default().to_string(),
        state: v["state"].as_str().unwrap_or_default().to_string(),
        head_sha: v["head"]["sha"].as_str().map(str::to_string),
        existing,
        // GitHub's list answers carry `merged_at`, single ones `merged` too.
        merged: v["merged"].as_bool().unwrap_or(false) || v["merged_at"].is_string(),
        merge_commit_sha: v["merge_commit_sha"].as_str().map(str::to_string),
    })
}

impl Forge {
    /// The forge API of `profile` (an `http` entry of profiles.json) for `repository`.
    pub fn new(profile: Option<&str>, repository: &str, ctx: &Ctx) -> Result<Self, ToolError> {
        let profile = profile.filter(|p| !p.is_empty()).ok_or_else(|| {
            ToolError::invalid(
                "forge_profile",
                "missing: name the http profile of profiles.json whose base_url is the forge's \
                 API (https://api.github.com, https://gitea.example/api/v1) and whose auth is \
                 its token",
            )
        })?;
        check_repository("repository", repository)?;
        Ok(Self {
            profile: profile.into(),
            repository: repository.into(),
            timeout_ms: ctx.timeout_ms,
        })
    }

    fn owner(&self) -> &str {
        self.repository.split('/').next().unwrap_or_default()
    }

    fn pulls_path(&self) -> String {
        let (o, n) = self.repository.split_once('/').unwrap_or_default();
        format!("repos/{}/{}/pulls", encode(o), encode(n))
    }

    /// Sends a request; a 2xx or 422 answer is returned with its status, anything else is the
    /// error it maps to.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), ToolError> {
        let (resp, v) = Rest {
            profile: &self.profile,
            timeout_ms: self.timeout_ms,
            max_bytes: MAX_BODY,
            accept: "application/vnd.github+json",
        }
        .json(method, path, body)?;
        if (200..300).contains(&resp.status) || resp.status == 422 {
            return Ok((resp.status, v));
        }
        let says = v["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&resp.body)
                    .chars()
                    .take(300)
                    .collect()
            });
        let p = &self.profile;
        let r = &self.repository;
        Err(match resp.status {
            401 => ToolError::denied(format!(
                "the forge (profile {p:?}) rejected the token (401: {says}); renew the token \
                 the profile references"
            )),
            403 => ToolError::denied(format!(
                "the forge (profile {p:?}) forbids {method} on {r} (403: {says}); give the \
                 token pull-request write access to the repository"
            )),
            404 => ToolError::not_found(format!(
                "the forge (profile {p:?}) has no repository {r} (404: {says}); check \
                 `repository` (owner/name) and the profile's base_url"
            )),
            code => ToolError::failed(format!(
                "the forge (profile {p:?}) answered {code} to {method} {path}: {says}; retry later"
            )),
        })
    }

    /// The open pull request whose head is `branch`, if any.
    pub fn open_pull(&self, branch: &str) -> Result<Option<PullRequest>, ToolError> {
        let path = format!(
            "{}{}",
            self.pulls_path(),
            query_string(&[
                ("head", format!("{}:{branch}", self.owner())),
                ("state", "open".into()),
            ])
        );
        let (_, v) = self.send("GET", &path, None)?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["head"]["ref"] == branch)
            .find_map(|p| pull(p, true)))
    }

    /// The pull request whose head is `branch` that has been merged, if any (the newest).
    pub fn merged_pull(&self, branch: &str) -> Result<Option<PullRequest>, ToolError> {
        let path = format!(
            "{}{}",
            self.pulls_path(),
            query_string(&[
                ("head", format!("{}:{branch}", self.owner())),
                ("state", "closed".into()),
            ])
        );
        let (_, v) = self.send("GET", &path, None)?;
        let mut merged: Vec<PullRequest> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["head"]["ref"] == branch)
            .filter_map(|p| pull(p, true))
            .filter(|p| p.merged)
            .collect();
        merged.sort_by_key(|p| p.number);
        Ok(merged.pop())
    }

    /// Pull request `number` as the forge sees it now.
    pub fn get_pull(&self, number: u64) -> Result<PullRequest, ToolError> {
        let (status, v) = self.send("GET", &format!("{}/{number}", self.pulls_path()), None)?;
        pull(&v, true).ok_or_else(|| {
            ToolError::failed(format!(
                "the forge answered {status} to a read of pull request #{number} without one;                  is the profile's base_url a GitHub-shaped API?"
            ))
        })
    }

    /// Merges pull request `number` if its head is still `head_sha` (a merge commit); returns
    /// the merge commit.
    pub fn merge_pull(&self, number: u64, head_sha: &str) -> Result<String, ToolError> {
        let (status, v) = self.send(
            "PUT",
            &format!("{}/{number}/merge", self.pulls_path()),
            Some(json!({"sha": head_sha, "merge_method": "merge"})),
        )?;
        match v["sha"].as_str() {
            Some(sha) if status != 422 && v["merged"] != false => Ok(sha.to_string()),
            _ => Err(ToolError::failed(format!(
                "the forge did not merge pull request #{number} ({status}: {}); look at the pull                  request (conflicts, required reviews or checks), then merge it there and call                  again: the release goes on from the merge",
                v["message"].as_str().unwrap_or("no reason given")
            ))),
        }
    }

    /// Opens a pull request of `head` into `base`; an open one for the same head is returned
    /// as it is (the forge refuses a second).
    pub fn create_pull(
        &self,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<PullRequest, ToolError> {
        let (status, v) = self.send(
            "POST",
            &self.pulls_path(),
            Some(json!({"title": title, "head": head, "base": base, "body": body})),
        )?;
        if status == 422 {
            if let Some(p) = self.open_pull(head)? {
                return Ok(p);
            }
            let why = v["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    e["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{} {}", e["field"], e["code"]))
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ToolError::invalid(
                "base",
                format!(
                    "the forge refused the pull request of {head} into {base} ({}: {why}); \
                     check that `base` exists on the forge and differs from the branch",
                    v["message"].as_str().unwrap_or("422")
                ),
            ));
        }
        pull(&v, false).ok_or_else(|| {
            ToolError::failed(format!(
                "the forge answered {status} without a pull request number; is the profile's \
                 base_url a GitHub-shaped API?"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_owner_slash_name_and_nothing_else() {
        check_repository("repository", "acme/deploy").unwrap();
        check_repository("repository", "a-b/c.d_e").unwrap();
        for bad in [
            "acme", "acme/", "/x", "a/b/c", "../x", "a/..", "a/b?x=1", "a b/c", "",
        ] {
            assert_eq!(
                check_repository("repository", bad)
                    .unwrap_err()
                    .field
                    .as_deref(),
                Some("repository"),
                "{bad}"
            );
        }
    }
}
