//! The project's reference docs stay true: docs/tools.md is exactly what `infra docs tools`
//! prints, and docs/policy.md names every key the policy format accepts.

use std::path::PathBuf;

use infra_tests::Home;

fn repo_file(rel: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (path, text)
}

#[test]
fn docs_tools_md_is_what_infra_docs_tools_prints() {
    let home = Home::new();
    let out = home
        .command()
        .args(["docs", "tools"])
        .output()
        .expect("run infra docs tools");
    assert!(
        out.status.success(),
        "infra docs tools failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = String::from_utf8(out.stdout).expect("the reference is UTF-8");
    assert!(
        want.contains("## http") && want.contains("## help"),
        "{want}"
    );
    let (path, have) = repo_file("docs/tools.md");
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "{} is stale (first difference at line {}): regenerate it from the repository root \
             with `{}` after `cargo build -p infra`",
            path.display(),
            line + 1,
            infra::docs::REGENERATE.replace("infra docs", "target/debug/infra docs"),
        );
    }
}

#[test]
fn docs_policy_md_names_every_key_of_the_examples() {
    let (_, examples) = repo_file("policies/examples.toml");
    let (path, doc) = repo_file("docs/policy.md");
    let mut missing = Vec::new();
    let mut seen = 0;
    // The tables whose keys are names the operator chooses, not keys of the format.
    let named_tables = ["secrets", "roots", "programs"];
    let mut current = String::new();
    for line in examples.lines().map(str::trim) {
        let section = line
            .strip_prefix('[')
            .and_then(|l| l.split(']').next())
            .and_then(|s| s.rsplit('.').next());
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = s.to_string();
        }
        let key = line
            .split_once(" = ")
            .map(|(k, _)| k.trim())
            .filter(|k| !k.starts_with('#') && !k.contains(' '));
        // Plugin names and the entries of named tables are examples, not keys of the format.
        let key = match (section, key) {
            (Some(s), _)
                if [
                    "http",
                    "ssh",
                    "postgres",
                    "fs",
                    "exec",
                    "git",
                    "secrets",
                    "artifacts",
                    "log",
                    "guard",
                    "kubernetes",
                    "limits",
                    "roots",
                    "programs",
                ]
                .contains(&s) =>
            {
                Some(s)
            }
            (_, Some(_)) if named_tables.contains(&current.as_str()) => None,
            (_, Some(k)) if !k.contains('-') => Some(k),
            _ => None,
        };
        if let Some(k) = key {
            seen += 1;
            let named = [format!("`{k}`"), format!("[{k}]"), format!(".{k}]")];
            if !named.iter().any(|n| doc.contains(n.as_str())) {
                missing.push(k.to_string());
            }
        }
    }
    assert!(
        seen > 20,
        "policies/examples.toml should list every key; read {seen}"
    );
    assert!(
        missing.is_empty(),
        "{} does not document these keys of policies/examples.toml: {missing:?}; add a row for each",
        path.display()
    );
}
