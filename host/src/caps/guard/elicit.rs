//! The user's approval of a write to a protected target: the question the client shows (kind,
//! target, namespaces, the plan) and what its answer means. Only an accept with the target's
//! exact name approves; everything else — decline, cancel, a wrong name, no answer in time, a
//! client that cannot ask — is a refusal (fail closed).

use std::time::Duration;

use crate::tool::{Answer, Question};

/// The most of the plan the question shows; the rest is cut with a note (the plugin's own
/// result carries the whole plan).
pub const PLAN_CAP: usize = 8 * 1024;
/// The longest the host waits for the user.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(300);
/// The one field the user fills in.
pub const FIELD: &str = "confirm";

/// What is being approved, as the user reads it.
pub struct Request<'a> {
    /// The kind of target.
    pub kind: &'a str,
    /// The target's name: what the user types to approve.
    pub target: &'a str,
    /// Namespaces touched ("" is cluster-scoped).
    pub namespaces: &'a [String],
    /// The plan, already scrubbed of secrets.
    pub plan: &'a str,
    /// Who asks: plugin, tool, trace id.
    pub plugin: &'a str,
    /// The tool of the call.
    pub tool: &'a str,
    /// The call's trace id.
    pub trace_id: &'a str,
}

/// The question for `req`, waiting at most `timeout`.
pub fn question(req: &Request<'_>, timeout: Duration) -> Question {
    let namespaces = match req.namespaces {
        [] => "(none)".to_string(),
        ns => ns
            .iter()
            .map(|n| match n.as_str() {
                "" => "(cluster-scoped)".to_string(),
                n => n.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut plan = req.plan;
    let mut cut = String::new();
    if plan.len() > PLAN_CAP {
        let mut end = PLAN_CAP;
        while !plan.is_char_boundary(end) {
            end -= 1;
        }
        cut = format!(
            "\n… ({} more bytes of the plan not shown; the tool's result has all of it)",
            plan.len() - end
        );
        plan = &plan[..end];
    }
    let message = format!(
        "infra: approve a write to the protected target '{target}'?\n\n\
         kind: {kind}\ntarget: {target}\nnamespaces: {namespaces}\n\
         asked by: plugin '{plugin}', tool {tool}, trace {trace}\n\n\
         plan:\n{plan}{cut}\n\n\
         To approve, type the target's name ({target}). Decline or cancel to refuse; nothing \
         changes then.",
        kind = req.kind,
        target = req.target,
        plugin = req.plugin,
        tool = req.tool,
        trace = req.trace_id,
    );
    Question {
        message,
        field: FIELD.into(),
        prompt: format!("type {} to approve", req.target),
        timeout,
    }
}

/// Whether `answer` approves a write to `target`; else the refusal's reason.
pub fn verdict(answer: Answer, target: &str) -> Result<(), String> {
    let end = "nothing was changed; call again to ask once more";
    match answer {
        Answer::Accepted(typed) if typed.trim() == target => Ok(()),
        Answer::Accepted(typed) => Err(format!(
            "the user typed '{}', not the target's name '{target}', so the write is not approved; {end}",
            typed.chars().take(80).collect::<String>()
        )),
        Answer::Declined => Err(format!("the user declined the write to '{target}'; {end}")),
        Answer::Cancelled => Err(format!(
            "the user dismissed the approval of the write to '{target}'; {end}"
        )),
        Answer::Unsupported(why) => Err(format!(
            "'{target}' is a protected target and your MCP client cannot ask you for approval \
             ({why}); use a client with elicitation support, or ask the operator to make the \
             change or to remove `protected` from the target"
        )),
        Answer::Failed(why) => Err(format!(
            "the approval of the write to '{target}' got no answer ({why}); {end}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(plan: &'a str, ns: &'a [String]) -> Request<'a> {
        Request {
            kind: "kubernetes",
            target: "prod",
            namespaces: ns,
            plan,
            plugin: "k8s",
            tool: "k8s",
            trace_id: "t-1",
        }
    }

    #[test]
    fn the_question_shows_what_changes_and_caps_the_plan() {
        let ns = vec!["apps-a".to_string(), String::new()];
        let q = question(&req("+ replicas: 3", &ns), ASK_TIMEOUT);
        for part in [
            "kind: kubernetes",
            "target: prod",
            "apps-a, (cluster-scoped)",
            "+ replicas: 3",
            "type the target's name (prod)",
        ] {
            assert!(q.message.contains(part), "{part}: {}", q.message);
        }
        assert_eq!(q.prompt, "type prod to approve");
        let long = "é".repeat(PLAN_CAP);
        let q = question(&req(&long, &ns), ASK_TIMEOUT);
        assert!(q.message.len() < PLAN_CAP + 1024);
        assert!(q.message.contains("more bytes of the plan not shown"));
    }

    #[test]
    fn only_the_exact_name_approves() {
        assert!(verdict(Answer::Accepted("prod".into()), "prod").is_ok());
        assert!(verdict(Answer::Accepted(" prod\n".into()), "prod").is_ok());
        for a in [
            Answer::Accepted("Prod".into()),
            Answer::Accepted("yes".into()),
            Answer::Accepted(String::new()),
            Answer::Declined,
            Answer::Cancelled,
            Answer::Failed("timed out".into()),
        ] {
            assert!(verdict(a.clone(), "prod").is_err(), "{a:?}");
        }
        let e = verdict(Answer::Unsupported("no elicitation support".into()), "prod").unwrap_err();
        assert!(
            e.contains("cannot ask you for approval") && e.contains("operator"),
            "{e}"
        );
    }
}
