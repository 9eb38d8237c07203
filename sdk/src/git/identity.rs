//! Who commits: the author and committer a call names, handed to git as `GIT_AUTHOR_*` and
//! `GIT_COMMITTER_*` variables (the grant's `env` must allow them), never as config.

use crate::caps::types::KeyValue;
use crate::prelude::*;

/// A commit author or committer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

/// `GIT_AUTHOR_*`/`GIT_COMMITTER_*` for the host to set; the committer defaults to the author.
/// A value on several lines or with `<`/`>` is refused: git would write it into the commit
/// header as given.
pub fn identity(
    author: Option<&Person>,
    committer: Option<&Person>,
) -> Result<Vec<KeyValue>, ToolError> {
    let mut env = Vec::new();
    for (role, field, p) in [
        ("AUTHOR", "author", author),
        ("COMMITTER", "committer", committer.or(author)),
    ] {
        let Some(p) = p else { continue };
        for (what, v) in [("NAME", &p.name), ("EMAIL", &p.email)] {
            if v.trim().is_empty() || v.contains(['\n', '\0', '<', '>']) {
                return Err(ToolError::invalid(
                    format!("{field}.{}", what.to_lowercase()),
                    "must be non-empty, on one line, without '<' or '>'",
                ));
            }
            env.push(KeyValue {
                key: format!("GIT_{role}_{what}"),
                value: v.clone(),
            });
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_become_variables_and_header_breaking_values_are_refused() {
        let a = Person {
            name: "Ann".into(),
            email: "ann@example.org".into(),
        };
        let env = identity(Some(&a), None).unwrap();
        let keys: Vec<&str> = env.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "GIT_AUTHOR_NAME",
                "GIT_AUTHOR_EMAIL",
                "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL"
            ]
        );
        let bad = Person {
            name: "Ann\nSigned-off-by: x".into(),
            email: "a@x".into(),
        };
        assert_eq!(
            identity(Some(&bad), None).unwrap_err().field.as_deref(),
            Some("author.name")
        );
        assert!(identity(None, None).unwrap().is_empty());
    }
}
