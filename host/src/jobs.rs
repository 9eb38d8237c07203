//! The job registry: background commands started with `exec-detached`, kept in `jobs.json` in the
//! state directory so a restarted server still knows them.
//!
//! The registry holds what the host knows without asking the target (where, what, when, which
//! remote process) and the final state once seen; the live state is read from the target by the
//! `jobs` host tool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

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

/// The registry, persisted on every change.
pub struct Jobs {
    path: PathBuf,
    jobs: Mutex<Vec<Job>>,
}

impl Jobs {
    /// Opens the registry at `path` (empty when the file does not exist).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let jobs = match crate::state::read_optional(path)? {
            None => Vec::new(),
            Some(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a valid job registry; move it aside to start a fresh one",
                    path.display()
                )
            })?,
        };
        Ok(Self {
            path: path.to_path_buf(),
            jobs: Mutex::new(jobs),
        })
    }

    /// A fresh job id.
    pub fn new_id() -> String {
        format!("j-{:016x}", rand::random::<u64>())
    }

    /// Records a new job.
    pub fn add(&self, job: Job) -> anyhow::Result<()> {
        let mut jobs = self.lock();
        jobs.push(job);
        if jobs.len() > MAX_JOBS
            && let Some(i) = jobs.iter().position(|j| j.state.is_final())
        {
            jobs.remove(i);
        }
        self.save(&jobs)
    }

    /// The job with this id.
    pub fn get(&self, id: &str) -> Option<Job> {
        self.lock().iter().find(|j| j.id == id).cloned()
    }

    /// Jobs, newest first.
    pub fn list(&self) -> Vec<Job> {
        self.lock().iter().rev().cloned().collect()
    }

    /// Replaces the stored copy of `job`.
    pub fn update(&self, job: &Job) -> anyhow::Result<()> {
        let mut jobs = self.lock();
        if let Some(slot) = jobs.iter_mut().find(|j| j.id == job.id) {
            *slot = job.clone();
        }
        self.save(&jobs)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the registry atomically, so a crash leaves the old or the new file, never half.
    fn save(&self, jobs: &[Job]) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(jobs)?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .with_context(|| {
                format!(
                    "cannot write the job registry {}; check the state directory's permissions",
                    self.path.display()
                )
            })
    }
}

/// Now, as RFC 3339.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
