//! Landlock for one run: what the program may read, write and execute, and whether it may use
//! TCP. The ruleset is built beforehand (opening paths allocates); the thread that starts the
//! program enters it ([`Ruleset::enter`]: two raw syscalls) just before, and the program inherits it.
//!
//! Needs Landlock ABI 3 (Linux 6.2: truncation is a handled right, so a read-only root cannot be
//! truncated) and ABI 4 (Linux 6.7) when TCP is denied. Scoping of signals and abstract UNIX
//! sockets (ABI 6) is added where the kernel has it. A kernel below what the run needs is a
//! refusal: a program never runs with less confinement than the policy promised.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset as LlRuleset,
    RulesetAttr, RulesetCreatedAttr, Scope, path_beneath_rules,
};

use super::Refusal;

/// Test-only knob: pretend the kernel's Landlock ABI is at most this (0 = no Landlock). It can
/// only lower what the host believes the kernel has, so it only ever makes runs refused.
const FORCE_ABI_VAR: &str = "INFRA_TEST_LANDLOCK_ABI";

/// The ABI files need (truncate handled).
const FS_ABI: i32 = 3;
/// The ABI TCP rules need.
const NET_ABI: i32 = 4;
/// The ABI scoping needs.
const SCOPE_ABI: i32 = 6;

/// System directories every program may read and execute. Never `/home`, `/root`, `/tmp`, the
/// real `$HOME` or `/proc`: those hold other users' and the server's files.
const SYSTEM_RX: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The few files of `/etc` programs need to start, find users, resolve names and check TLS
/// (not `/etc` as a whole: it holds host keys, shadow files and service credentials).
const ETC_READ: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/pki/tls/certs",
    "/etc/mime.types",
];

/// Devices a program may write to (and read).
const DEV_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];
/// Devices a program may read.
const DEV_READ: &[&str] = &["/dev/urandom", "/dev/random"];

/// The kernel's Landlock ABI (0 when it has none), as the host may rely on it.
pub fn kernel_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns the
    // ABI version (or -1 with errno); it takes no pointer.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    let abi = i32::try_from(abi).unwrap_or(0).max(0);
    match std::env::var(FORCE_ABI_VAR)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        Some(forced) => abi.min(forced.max(0)),
        None => abi,
    }
}

/// What one run may touch.
#[derive(Debug, Default, Clone)]
pub struct Reach {
    /// Directories (or files) readable and executable.
    pub read: Vec<PathBuf>,
    /// Directories (or files) readable, writable and executable.
    pub write: Vec<PathBuf>,
    /// TCP bind and connect allowed.
    pub network: bool,
    /// Files are limited (false only for unsafe grants: then only the network is).
    pub files: bool,
    /// With `network`, TCP connects only to these ports (a push: its URL's port); `None` is
    /// any port.
    pub ports: Option<Vec<u16>>,
}

/// A ruleset ready to enter.
#[derive(Debug)]
pub struct Ruleset {
    fd: OwnedFd,
}

impl Ruleset {
    /// Builds the ruleset for `access` (plus the system paths every program needs), or refuses
    /// when the kernel cannot enforce it.
    pub fn build(access: &Reach) -> Result<Ruleset, Refusal> {
        let kernel = kernel_abi();
        let limits_tcp = !access.network || access.ports.is_some();
        let need = if limits_tcp { NET_ABI } else { FS_ABI };
        // An unsafe grant limits only the network (callers never ask for neither).
        if kernel < need {
            return Err(Refusal::Denied(format!(
                "this kernel's Landlock ABI is {kernel}{}, and a confined program needs ABI {need} (Linux {}) to be limited to its roots{}; programs are never run unconfined — run infra on a newer kernel with Landlock enabled (lsm=landlock), or use an unsafe grant with INFRA_UNSAFE_LOCAL=1 for trusted local work",
                if kernel == 0 { " (none)" } else { "" },
                if need == NET_ABI { "6.7" } else { "6.2" },
                if access.network {
                    ""
                } else {
                    " and kept off the network"
                },
            )));
        }
        let abi = ABI::from(kernel);
        let failed = |e: landlock::RulesetError| {
            Refusal::Failed(format!(
                "cannot build the Landlock ruleset: {e}; the program was not run"
            ))
        };
        let mut rs = LlRuleset::default().set_compatibility(CompatLevel::HardRequirement);
        if access.files {
            rs = rs.handle_access(AccessFs::from_all(abi)).map_err(failed)?;
        }
        if limits_tcp {
            rs = rs
                .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
                .map_err(failed)?;
        }
        if kernel >= SCOPE_ABI {
            rs = rs.scope(Scope::from_all(abi)).map_err(failed)?;
        }
        let read = AccessFs::from_read(abi);
        let all = AccessFs::from_all(abi);
        let system = SYSTEM_RX.iter().chain(ETC_READ).chain(DEV_READ);
        let mut created = rs.create().map_err(failed)?;
        if access.network {
            for port in access.ports.iter().flatten() {
                created = created
                    .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
                    .map_err(failed)?;
            }
        }
        if !access.files {
            let fd: Option<OwnedFd> = created.into();
            return fd.map(|fd| Ruleset { fd }).ok_or_else(|| {
                Refusal::Failed("Landlock gave no ruleset; the program was not run".into())
            });
        }
        created = created
            .add_rules(path_beneath_rules(system, read))
            .map_err(failed)?
            .add_rules(path_beneath_rules(DEV_RW, all))
            .map_err(failed)?
            .add_rules(path_beneath_rules(&access.read, read))
            .map_err(failed)?
            .add_rules(path_beneath_rules(&access.write, all))
            .map_err(failed)?;
        let fd: Option<OwnedFd> = created.into();
        let fd = fd.ok_or_else(|| {
            Refusal::Failed("Landlock gave no ruleset; the program was not run".into())
        })?;
        Ok(Ruleset { fd })
    }

    /// Enters the ruleset on the calling thread (and what it starts): no new privileges, then
    /// Landlock. Two raw syscalls; irreversible for that thread, so only a throwaway thread calls it.
    pub fn enter(&self) -> std::io::Result<()> {
        // SAFETY: prctl and landlock_restrict_self take integers only; `fd` is alive (borrowed
        // from `self`) and is not inherited (Landlock ruleset fds are O_CLOEXEC).
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, self.fd.as_raw_fd(), 0u32) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// The path given, and where it points when it is a symlink (the kernel checks the target).
pub fn with_target(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(p)
        && real != p
    {
        out.push(real);
    }
    out
}
