//! Confinement of the local programs `exec` and `git` run: the environment the host sets
//! ([`env`]), the per-run home ([`home`]), Landlock ([`landlock`]), program resolution and pins
//! ([`program`]), argument guards ([`guards`]), git's neutralisation ([`git`], its key cache [`git_keys`]), terraform's
//! environment, refused options and writing subcommands ([`terraform`]), and starting and
//! stopping the process group ([`spawn`]).
//!
//! Landlock is entered by a short-lived thread that then starts the program ([`spawn`]): the
//! ruleset binds that thread and its child only, and the child is started with `posix_spawn`
//! (`CLONE_VFORK`), so the server's page tables are not copied per run. (Re-running the infra
//! binary as a trampoline would cost a second exec of a large binary per run for no gain in
//! safety.) Nothing here checks grants: `caps/exec` and `caps/git` do, then call this.

pub mod env;
pub mod git;
pub mod git_keys;
pub mod git_url;
pub mod guards;
pub mod home;
pub mod landlock;
pub mod program;
pub mod spawn;
pub mod terraform;

/// Why the host will not (or could not) run a program, in the kinds `cap-error` has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rule forbids it; the text says which and how to change it.
    Denied(String),
    /// The program, file or directory does not exist.
    NotFound(String),
    /// The request is malformed; the text names the field.
    Invalid(String),
    /// The host failed to set the run up.
    Failed(String),
}

impl Refusal {
    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Denied(m)
            | Refusal::NotFound(m)
            | Refusal::Invalid(m)
            | Refusal::Failed(m) => m,
        }
    }
}
