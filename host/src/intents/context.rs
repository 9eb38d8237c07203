//! What a repository is, from what it holds: the markers of node, python, go, rust, kubernetes
//! (kustomize, helm), Argo CD, Flux, Terraform, ansible, CI and git. Read through cap-std inside
//! the root (a symlink cannot lead out), bounded in depth, entries and bytes: the repository may
//! be hostile, and detection must cost little whatever it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use serde::Serialize;

/// Directories deeper than this are not looked into.
const MAX_DEPTH: usize = 4;
/// Entries looked at in all.
const MAX_ENTRIES: usize = 5000;
/// Bytes read of one YAML file (Argo CD and Flux are told apart by their kinds).
const MAX_YAML: u64 = 64 * 1024;
/// YAML files read in all.
const MAX_YAML_FILES: usize = 200;
/// Directories never looked into.
const SKIP: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    ".terraform",
    "vendor",
    "venv",
    ".venv",
];

/// The context of one repository.
#[derive(Debug, Default, Serialize)]
pub struct Context {
    /// What it is: `git`, `node`, `python`, `go`, `rust`, `k8s`, `kustomize`, `helm`,
    /// `argocd`, `flux`, `terraform`, `ansible`, `ci`.
    pub tags: BTreeSet<String>,
    /// Why, per tag: the paths that showed it (a few).
    pub evidence: BTreeMap<String, Vec<String>>,
    /// Where each kind of directory is, relative: `kustomize` overlays, `helm` charts,
    /// `terraform` working directories.
    pub dirs: BTreeMap<String, Vec<String>>,
    /// Detection stopped at a bound (depth, entries); what was seen still counts.
    pub partial: bool,
}

impl Context {
    fn tag(&mut self, tag: &str, path: &str) {
        self.tags.insert(tag.to_string());
        let e = self.evidence.entry(tag.to_string()).or_default();
        if e.len() < 5 {
            e.push(path.to_string());
        }
    }

    fn dir(&mut self, kind: &str, dir: &str) {
        let d = self.dirs.entry(kind.to_string()).or_default();
        let dir = if dir.is_empty() { "." } else { dir };
        if d.len() < 20 && !d.iter().any(|x| x == dir) {
            d.push(dir.to_string());
        }
    }
}

/// Detects the context of the directory `path` (relative) under `root`.
pub fn detect(root: &std::path::Path, path: &str) -> std::io::Result<Context> {
    let base = Dir::open_ambient_dir(root, ambient_authority())?;
    let dir = match path {
        "" | "." => base,
        p => base.open_dir(p)?,
    };
    let mut c = Context::default();
    let mut seen = 0usize;
    let mut yaml = 0usize;
    walk(&dir, "", 0, &mut c, &mut seen, &mut yaml)?;
    // Directory order is the filesystem's: sort, overlays first (the kustomization an agent
    // deploys, rather than the base it builds on).
    for dirs in c.dirs.values_mut() {
        dirs.sort_by_key(|d| (!d.contains("overlays/"), d.clone()));
    }
    Ok(c)
}

fn join(parent: &str, name: &str) -> String {
    match parent {
        "" => name.to_string(),
        p => format!("{p}/{name}"),
    }
}

fn walk(
    dir: &Dir,
    rel: &str,
    depth: usize,
    c: &mut Context,
    seen: &mut usize,
    yaml: &mut usize,
) -> std::io::Result<()> {
    let mut subdirs = Vec::new();
    for entry in dir.entries()? {
        let Ok(entry) = entry else { continue };
        *seen += 1;
        if *seen > MAX_ENTRIES {
            c.partial = true;
            return Ok(());
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = join(rel, &name);
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            match name.as_str() {
                ".git" => c.tag("git", &path),
                ".github" if dir.exists(format!("{name}/workflows")) => c.tag("ci", &path),
                _ => {}
            }
            if !SKIP.contains(&name.as_str()) {
                subdirs.push(name);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        match name.as_str() {
            "package.json" => c.tag("node", &path),
            "pyproject.toml" | "requirements.txt" | "setup.py" | "Pipfile" => {
                c.tag("python", &path)
            }
            "go.mod" => c.tag("go", &path),
            "Cargo.toml" => c.tag("rust", &path),
            "kustomization.yaml" | "kustomization.yml" | "Kustomization" => {
                c.tag("kustomize", &path);
                c.tag("k8s", &path);
                c.dir("kustomize", rel);
            }
            "Chart.yaml" => {
                c.tag("helm", &path);
                c.tag("k8s", &path);
                c.dir("helm", rel);
            }
            "ansible.cfg" => c.tag("ansible", &path),
            ".gitlab-ci.yml" | "Jenkinsfile" | ".drone.yml" => c.tag("ci", &path),
            n if n.ends_with(".tf") => {
                c.tag("terraform", &path);
                c.dir("terraform", rel);
            }
            n if n.starts_with("playbook") && (n.ends_with(".yml") || n.ends_with(".yaml")) => {
                c.tag("ansible", &path)
            }
            _ => {}
        }
        if (name.ends_with(".yaml") || name.ends_with(".yml")) && *yaml < MAX_YAML_FILES {
            *yaml += 1;
            let mut text = String::new();
            // Swapped for a FIFO or a symlink after it was listed, it is not read: opening
            // cannot block and follows no link, and only a regular file is read.
            let opened = dir.open_with(
                &name,
                OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW),
            );
            if let Ok(f) = opened
                && f.metadata().is_ok_and(|m| m.is_file())
            {
                let _ = f.take(MAX_YAML).read_to_string(&mut text);
            }
            if text.contains("argoproj.io/") {
                c.tag("argocd", &path);
                c.tag("k8s", &path);
            }
            if text.contains("toolkit.fluxcd.io/") {
                c.tag("flux", &path);
                c.tag("k8s", &path);
            }
            if text.contains("apiVersion:") && text.contains("kind:") {
                c.tag("k8s", &path);
            }
        }
    }
    if depth + 1 >= MAX_DEPTH {
        if !subdirs.is_empty() {
            c.partial = true;
        }
        return Ok(());
    }
    for name in subdirs {
        // A symlink to a directory is not followed: cap-std refuses one that leaves the root,
        // and one inside it would only be counted twice.
        let Ok(meta) = dir.symlink_metadata(&name) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        if let Ok(sub) = dir.open_dir(&name) {
            walk(&sub, &join(rel, &name), depth + 1, c, seen, yaml)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_tags_with_evidence_and_symlinks_out_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        };
        w("deploy/overlays/prod/kustomization.yaml", "resources: []\n");
        w("infra/main.tf", "resource \"terraform_data\" \"a\" {}\n");
        w(
            "apps/app.yaml",
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\n",
        );
        w("package.json", "{}");
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("main.tf"), "").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("escape")).unwrap();
        let c = detect(d.path(), ".").unwrap();
        for t in ["kustomize", "k8s", "terraform", "argocd", "node"] {
            assert!(c.tags.contains(t), "{t}: {c:?}");
        }
        assert_eq!(c.dirs["kustomize"], ["deploy/overlays/prod"]);
        assert_eq!(
            c.dirs["terraform"],
            ["infra"],
            "the symlinked tree is not read"
        );
        assert!(!c.tags.contains("flux"));
    }
}
