//! A forge's pull-request API through the host's `http` capability with a profile: the profile
//! holds the base URL and the token, the host injects it, and this code never sees it. Three API
//! shapes: GitHub's REST API, Gitea's (GitHub's paths, its own merge) and GitLab's merge
//! requests (`/projects/:id/merge_requests`), all read into one [`PullRequest`].

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

/// Which API the forge speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// GitHub (api.github.com or GitHub Enterprise's `/api/v3`).
    #[default]
    Github,
    /// GitLab (`https://gitlab.example/api/v4`): merge requests.
    Gitlab,
    /// Gitea or Forgejo (`https://gitea.example/api/v1`).
    Gitea,
}

/// One repository on a forge.
pub struct Forge {
    kind: Kind,
    profile: String,
    repository: String,
    timeout_ms: u32,
}

/// One segment of a repository's path: letters, digits, `-`, `_`, `.`, not `.` or `..`.
fn segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Checks `owner/name` (GitLab: `group/subgroup/…/name`, up to 20 segments), each segment
/// letters, digits, `-`, `_`, `.` (not `.` or `..`), so it stays one path of the API.
pub fn check_repository_of(kind: Kind, field: &str, repository: &str) -> Result<(), ToolError> {
    let segs: Vec<&str> = repository.split('/').collect();
    let most = if kind == Kind::Gitlab { 20 } else { 2 };
    if segs.len() >= 2 && segs.len() <= most && segs.iter().all(|s| segment(s)) {
        return Ok(());
    }
    Err(ToolError::invalid(
        field,
        format!(
            "{repository:?} is not a forge repository: give `owner/name` (e.g. `acme/deploy`{})",
            if kind == Kind::Gitlab {
                "; on GitLab `group/subgroup/name` too"
            } else {
                ""
            }
        ),
    ))
}

/// A pull request of GitHub's or Gitea's shape.
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

/// A GitLab merge request, in the words of a pull request (`opened` is `open`, `merged` is
/// `closed` and merged).
fn merge_request(v: &Value, existing: bool) -> Option<PullRequest> {
    let state = v["state"].as_str().unwrap_or_default();
    Some(PullRequest {
        number: v["iid"].as_u64()?,
        url: v["web_url"].as_str().unwrap_or_default().to_string(),
        state: match state {
            "opened" | "locked" => "open",
            _ => "closed",
        }
        .into(),
        head_sha: v["sha"].as_str().map(str::to_string),
        existing,
        merged: state == "merged",
        merge_commit_sha: v["merge_commit_sha"]
            .as_str()
            .or(v["squash_commit_sha"].as_str())
            .map(str::to_string),
    })
}

impl Forge {
    /// The forge API of `profile` (an `http` entry of profiles.json) for `repository`, speaking
    /// `kind`'s API.
    pub fn new(
        kind: Kind,
        profile: Option<&str>,
        repository: &str,
        ctx: &Ctx,
    ) -> Result<Self, ToolError> {
        let profile = profile.filter(|p| !p.is_empty()).ok_or_else(|| {
            ToolError::invalid(
                "forge_profile",
                "missing: name the http profile of profiles.json whose base_url is the forge's \
                 API (https://api.github.com, https://gitlab.example/api/v4, \
                 https://gitea.example/api/v1) and whose auth is its token",
            )
        })?;
        check_repository_of(kind, "repository", repository)?;
        Ok(Self {
            kind,
            profile: profile.into(),
            repository: repository.into(),
            timeout_ms: ctx.timeout_ms,
        })
    }

    fn owner(&self) -> &str {
        self.repository.split('/').next().unwrap_or_default()
    }

    fn pulls_path(&self) -> String {
        if self.kind == Kind::Gitlab {
            // GitLab names a project by its whole path, URL-encoded into one segment.
            return format!("projects/{}/merge_requests", encode(&self.repository));
        }
        let (o, n) = self.repository.split_once('/').unwrap_or_default();
        format!("repos/{}/{}/pulls", encode(o), encode(n))
    }

    fn read(&self, v: &Value, existing: bool) -> Option<PullRequest> {
        match self.kind {
            Kind::Gitlab => merge_request(v, existing),
            Kind::Github | Kind::Gitea => pull(v, existing),
        }
    }

    /// The pull requests of head `branch` in `state` (`open` or `closed`), newest last.
    fn list(&self, branch: &str, state: &str) -> Result<Vec<PullRequest>, ToolError> {
        let query = match self.kind {
            Kind::Gitlab => vec![
                ("source_branch", branch.to_string()),
                (
                    "state",
                    if state == "open" { "opened" } else { "merged" }.into(),
                ),
            ],
            // Gitea ignores `head`: the answer is filtered below either way.
            Kind::Github | Kind::Gitea => vec![
                ("head", format!("{}:{branch}", self.owner())),
                ("state", state.into()),
                ("per_page", "100".into()),
            ],
        };
        let path = format!("{}{}", self.pulls_path(), query_string(&query));
        let (_, v) = self.send("GET", &path, None)?;
        let head = |p: &Value| match self.kind {
            Kind::Gitlab => p["source_branch"] == branch,
            Kind::Github | Kind::Gitea => p["head"]["ref"] == branch,
        };
        let mut out: Vec<PullRequest> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| head(p))
            .filter_map(|p| self.read(p, true))
            .collect();
        out.sort_by_key(|p| p.number);
        Ok(out)
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
            accept: match self.kind {
                Kind::Github => "application/vnd.github+json",
                Kind::Gitlab | Kind::Gitea => "application/json",
            },
        }
        .json(method, path, body)?;
        // 422 (GitHub, Gitea) and 409 (GitLab) answer a second pull request for one branch.
        if (200..300).contains(&resp.status) || resp.status == 422 || resp.status == 409 {
            return Ok((resp.status, v));
        }
        let says = v["message"]
            .as_str()
            .map(str::to_string)
            .or_else(|| v.get("message").map(Value::to_string))
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
        Ok(self.list(branch, "open")?.pop())
    }

    /// The pull request whose head is `branch` that has been merged, if any (the newest).
    pub fn merged_pull(&self, branch: &str) -> Result<Option<PullRequest>, ToolError> {
        Ok(self.list(branch, "closed")?.into_iter().rfind(|p| p.merged))
    }

    /// Pull request `number` as the forge sees it now.
    pub fn get_pull(&self, number: u64) -> Result<PullRequest, ToolError> {
        let (status, v) = self.send("GET", &format!("{}/{number}", self.pulls_path()), None)?;
        self.read(&v, true).ok_or_else(|| {
            ToolError::failed(format!(
                "the forge answered {status} to a read of pull request #{number} without one; \
                 is the profile's base_url the forge's API, and `forge` its kind?"
            ))
        })
    }

    /// Merges pull request `number` if its head is still `head_sha` (a merge commit); returns
    /// the merge commit.
    pub fn merge_pull(&self, number: u64, head_sha: &str) -> Result<String, ToolError> {
        let path = format!("{}/{number}/merge", self.pulls_path());
        let (method, body) = match self.kind {
            Kind::Github => ("PUT", json!({"sha": head_sha, "merge_method": "merge"})),
            Kind::Gitlab => ("PUT", json!({"sha": head_sha})),
            Kind::Gitea => ("POST", json!({"Do": "merge", "head_commit_id": head_sha})),
        };
        let (status, v) = self.send(method, &path, Some(body))?;
        let sha = match self.kind {
            Kind::Github => v["sha"]
                .as_str()
                .filter(|_| status != 422 && v["merged"] != false)
                .map(str::to_string),
            Kind::Gitlab => merge_request(&v, true)
                .filter(|p| p.merged)
                .and_then(|p| p.merge_commit_sha),
            // Gitea answers an empty 200: the merge commit is on the pull request.
            Kind::Gitea if status < 300 => self.get_pull(number)?.merge_commit_sha,
            Kind::Gitea => None,
        };
        sha.ok_or_else(|| {
            ToolError::failed(format!(
                "the forge did not merge pull request #{number} ({status}: {}); look at the pull \
                 request (conflicts, required reviews or checks), then merge it there and call \
                 again: the release goes on from the merge",
                v["message"].as_str().unwrap_or("no reason given")
            ))
        })
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
        let sent = match self.kind {
            Kind::Gitlab => json!({"source_branch": head, "target_branch": base,
                                   "title": title, "description": body}),
            Kind::Github | Kind::Gitea => {
                json!({"title": title, "head": head, "base": base, "body": body})
            }
        };
        let (status, v) = self.send("POST", &self.pulls_path(), Some(sent))?;
        if status == 422 || status == 409 {
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
                    v["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v["message"].to_string())
                ),
            ));
        }
        let mut p = self.read(&v, false).ok_or_else(|| {
            ToolError::failed(format!(
                "the forge answered {status} without a pull request number; is the profile's \
                 base_url the forge's API, and `forge` its kind?"
            ))
        })?;
        p.existing = false;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_repositories_may_name_subgroups_and_nothing_more() {
        check_repository_of(Kind::Gitlab, "repository", "grp/sub/app").unwrap();
        assert!(check_repository_of(Kind::Github, "repository", "grp/sub/app").is_err());
        for bad in [
            "grp/../app",
            "grp//app",
            "grp/sub/app?x",
            "/grp/app",
            "app",
            "a/./b",
        ] {
            assert!(
                check_repository_of(Kind::Gitlab, "repository", bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn gitlab_states_read_as_pull_request_states() {
        let mr = |state: &str| {
            merge_request(
                &json!({"iid": 3, "web_url": "u", "state": state, "sha": "h",
                        "merge_commit_sha": "m"}),
                false,
            )
            .unwrap()
        };
        assert_eq!(mr("opened").state, "open");
        assert!(!mr("opened").merged);
        assert_eq!(mr("merged").state, "closed");
        assert!(mr("merged").merged);
        assert!(!mr("closed").merged);
        assert_eq!(mr("merged").number, 3);
    }

    #[test]
    fn repositories_are_owner_slash_name_and_nothing_else() {
        check_repository_of(Kind::Github, "repository", "acme/deploy").unwrap();
        check_repository_of(Kind::Gitea, "repository", "a-b/c.d_e").unwrap();
        for bad in [
            "acme", "acme/", "/x", "a/b/c", "../x", "a/..", "a/b?x=1", "a b/c", "",
        ] {
            assert_eq!(
                check_repository_of(Kind::Github, "repository", bad)
                    .unwrap_err()
                    .field
                    .as_deref(),
                Some("repository"),
                "{bad}"
            );
        }
    }
}
