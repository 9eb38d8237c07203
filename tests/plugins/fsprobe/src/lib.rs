//! Test plugin: `fsprobe` hands the agent's `root`, `path` and options to the host's fs
//! capability unchanged — no checks of its own — so the fs tests can try every hostile path a
//! plugin or a prompt-injected agent could. A refusal comes back as the tool's error with the
//! host's kind and text; a success as the host's records, as JSON.

use crate::caps::fs;
use crate::caps::types::{ByteSource, FileKind, FileStat};
use infra_sdk::prelude::*;

/// The fs operation to forward.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Op {
    /// `roots()`.
    Roots,
    /// `read(root, path, max_inline)`.
    Read,
    /// `write(root, path, content | artifact, options)`.
    Write,
    /// `list-dir(root, path, depth, max_entries)`.
    List,
    /// `stat(root, path)`.
    Stat,
    /// `mkdir(root, path)`.
    Mkdir,
    /// `remove(root, path, recursive)`.
    Remove,
}

/// Arguments of `fsprobe`: passed to the host as given.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The operation.
    op: Op,
    /// The root name.
    #[serde(default)]
    root: String,
    /// The path.
    #[serde(default)]
    path: String,
    /// `read`: most bytes inline.
    #[serde(default)]
    max_inline: u64,
    /// `write`: the content as text.
    content: Option<String>,
    /// `write`: an artifact URI to write instead.
    artifact: Option<String>,
    /// `write`: permission bits.
    mode: Option<u32>,
    /// `write`: create missing parents.
    #[serde(default)]
    mkdirs: bool,
    /// `write`: replace an existing file.
    #[serde(default)]
    overwrite: bool,
    /// `list`: levels to recurse.
    #[serde(default)]
    depth: u32,
    /// `list`: most entries.
    #[serde(default)]
    max_entries: u32,
    /// `remove`: a whole tree.
    #[serde(default)]
    recursive: bool,
}

fn kind(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "other",
    }
}

fn stat_json(s: &FileStat) -> Value {
    json!({"path": s.path, "kind": kind(s.kind), "size": s.size, "mode": s.mode, "mtime": s.mtime})
}

fn run(args: Args, _: &Ctx) -> Result<Value, ToolError> {
    let (root, path) = (args.root.as_str(), args.path.as_str());
    Ok(match args.op {
        Op::Roots => {
            let roots: Vec<Value> = fs::roots()
                .iter()
                .map(|r| json!({"name": r.name, "path": r.path, "read_only": r.read_only}))
                .collect();
            json!({ "roots": roots })
        }
        Op::Read => {
            let r = fs::read(root, path, args.max_inline)?;
            json!({
                "stat": stat_json(&r.stat),
                "data": r.data.as_ref().map(|d| String::from_utf8_lossy(d).into_owned()),
                "data_len": r.data.as_ref().map(Vec::len),
                "artifact": r.artifact.as_ref().map(|a| json!({"uri": a.uri, "size": a.size, "sha256": a.sha256})),
            })
        }
        Op::Write => {
            let content = match (args.content, args.artifact) {
                (Some(text), None) => ByteSource::Bytes(text.into_bytes()),
                (None, Some(uri)) => ByteSource::Artifact(uri),
                _ => {
                    return Err(ToolError::invalid(
                        "content",
                        "give exactly one of `content` and `artifact`",
                    ));
                }
            };
            let options = fs::WriteOptions {
                mode: args.mode,
                mkdirs: args.mkdirs,
                overwrite: args.overwrite,
            };
            json!({ "stat": stat_json(&fs::write(root, path, &content, options)?) })
        }
        Op::List => {
            let l = fs::list_dir(root, path, args.depth, args.max_entries)?;
            let entries: Vec<Value> = l.entries.iter().map(stat_json).collect();
            json!({ "entries": entries, "truncated": l.truncated })
        }
        Op::Stat => json!({ "stat": stat_json(&fs::stat(root, path)?) }),
        Op::Mkdir => {
            fs::mkdir(root, path)?;
            json!({ "created": path })
        }
        Op::Remove => {
            fs::remove(root, path, args.recursive)?;
            json!({ "removed": path })
        }
    })
}

infra_sdk::plugin!(tools: [
    Tool::new("fsprobe", "fs probe", "Forwards `op` on `root`/`path` to the host's fs capability, unchecked.", run)
]);
