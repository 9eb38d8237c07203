//! The job registry: background commands started with `exec-detached`, kept in `jobs.json` in the
//! state directory so a restarted server still knows them.
//!
//! The registry holds what the host knows without asking the target (where, what, when, which
//! remote process) and the final state once seen; the live state is read from the target by the
//! `jobs` host tool.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::locked_file::Locked;

/// Jobs kept in the registry; the oldest finished ones are dropped beyond this.
const MAX_JOBS: usize = 500;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Still running on the target.
    Running,
    /// Ran to its end; see the exit code.
    Exited,
    /// Stopped by `jobs cancel`.
    Cancelled,
    /// Gone without an exit status: killed outside infra, or the target rebooted.
    Lost,
}

impl JobState {
    /// The job will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Running)
    }
}

/// One background command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// `j-` and 16 hex digits.
    pub id: String,
    /// The `targets.json` entry it runs on.
    pub target: String,
    /// The plugin that started it: the `jobs` tool reaches the target under that plugin's grants.
    pub plugin: String,
    /// The command line, scrubbed of known secrets.
    pub command: String,
    /// Remote pid, process group and session id.
    pub pid: u32,
    /// Remote directory with `stdout`, `stderr` and `exit`.
    pub dir: String,
    /// Trace id of the call that started it.
    pub trace_id: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Last known state.
    pub state: JobState,
    /// Exit code, once exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// When the host first saw it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

/// The registry: `jobs.json` itself, shared with every other infra process on the state
/// directory. Each change re-reads the file under its lock ([`Locked`]), so jobs another process
/// recorded meanwhile are kept; reads take the file as it is now.
pub struct Jobs {
    path: PathBuf,
}

impl Jobs {
    /// Opens the registry at `path` (empty when the file does not exist); a file that does not
    /// parse is refused now rather than at the first job.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let jobs = Self {
            path: path.to_path_buf(),
        };
        jobs.load()?;
        Ok(jobs)
    }

    /// A fresh job id.
    pub fn new_id() -> String {
        format!("j-{:016x}", rand::random::<u64>())
    }

    /// Records a new job.
    pub fn add(&self, job: Job) -> anyhow::Result<()> {
        self.change(|jobs| {
            jobs.push(job);
            if jobs.len() > MAX_JOBS
                && let Some(i) = jobs.iter().position(|j| j.state.is_final())
            {
                jobs.remove(i);
            }
        })
    }

    /// The job with this id.
    pub fn get(&self, id: &str) -> anyhow::Result<Option<Job>> {
        Ok(self.load()?.into_iter().find(|j| j.id == id))
    }

    /// Jobs, newest first.
    pub fn list(&self) -> anyhow::Result<Vec<Job>> {
        Ok(self.load()?.into_iter().rev().collect())
    }

    /// Replaces the stored copy of `job`.
    pub fn update(&self, job: &Job) -> anyhow::Result<()> {
        self.change(|jobs| {
            if let Some(slot) = jobs.iter_mut().find(|j| j.id == job.id) {
                *slot = job.clone();
            }
        })
    }

    fn load(&self) -> anyhow::Result<Vec<Job>> {
        match crate::state::read_optional(&self.path)? {
            None => Ok(Vec::new()),
            Some(text) => self.parse(&text),
        }
    }

    fn parse(&self, text: &str) -> anyhow::Result<Vec<Job>> {
        serde_json::from_str(text).with_context(|| {
            format!(
                "{} is not a valid job registry; move it aside to start a fresh one",
                self.path.display()
            )
        })
    }

    /// Applies `edit` to the registry as it is on disk now, under the file's lock.
    fn change(&self, edit: impl FnOnce(&mut Vec<Job>)) -> anyhow::Result<()> {
        let cannot = || {
            format!(
                "cannot update the job registry {}; check the state directory's permissions",
                self.path.display()
            )
        };
        let file = Locked::acquire(&self.path).with_context(cannot)?;
        let mut jobs = match file.read().with_context(cannot)? {
            None => Vec::new(),
            Some(text) => self.parse(&text)?,
        };
        edit(&mut jobs);
        file.replace(&serde_json::to_vec_pretty(&jobs)?)
            .with_context(cannot)
    }
}

/// Now, as RFC 3339.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
