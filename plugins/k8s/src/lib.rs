//! The `k8s` tool: read-only look-ups in Kubernetes clusters through their API.
//!
//! Every request goes through the host's `http` capability with a `kubernetes` profile: the
//! host knows the server, pins its CA and injects the token or client certificate, so the
//! plugin never holds a kubeconfig and the policy sees every request. Kinds are resolved through
//! API discovery, so custom resources work like built-in ones. Nothing here writes: every
//! request is a GET.

mod api;
mod args;
mod contexts;
mod describe;
mod diagnose;
mod discovery;
mod events;
mod logs;
mod out;
mod read;
mod rows;
mod top;

use infra_sdk::prelude::*;

use args::{Action, K8sArgs};
use discovery::Cluster;
use out::K8sOutput;

const DESCRIPTION: &str = "Read-only Kubernetes through the cluster's API, with a `kubernetes` \
profile (credentials stay in the host). `contexts` (the profiles you may use), `namespaces`, \
`get` (one object in full), `list` (compact rows: name, namespace, age, status, ready, restarts; \
`label_selector`, `field_selector`, `limit` + `continue`), `describe` (object + its events + \
owner chain), `events` (namespace or object, newest first), `logs` (`container`, `tail`, \
`since_seconds`, `previous`; long logs whole in an artifact), `top` (metrics.k8s.io), \
`diagnose` (CrashLoopBackOff, ImagePullBackOff, OOMKilled, unschedulable pods with the \
scheduler's reason, failed pods, not-ready nodes, stuck rollouts — each with its evidence). \
`kind` is anything discovery knows: `pods`, `Pod`, `po`, `deployments.apps`, \
`applications.argoproj.io`.";

fn run(a: K8sArgs, ctx: &Ctx) -> Result<K8sOutput, ToolError> {
    let mut o = K8sOutput::default();
    if let Action::Contexts = a.action {
        o.contexts = Some(contexts::contexts());
        if o.contexts.as_ref().is_some_and(Vec::is_empty) {
            o.notes.push(
                "no kubernetes profile is granted: add one to profiles.json (a kubeconfig \
                 context or server + ca + token) and grant it under [plugin.k8s.http] profiles"
                    .into(),
            );
        }
        return Ok(o);
    }
    let mut c = Cluster::new(a.at.profile.as_deref(), ctx)?;
    o.profile = Some(c.client.profile.clone());
    let ns = a.at.namespace.as_deref();
    match &a.action {
        Action::Contexts => {}
        Action::Namespaces(page) => read::namespaces(&mut c, page, &mut o)?,
        Action::Get {
            kind,
            name,
            managed_fields,
        } => read::get(
            &mut c,
            kind,
            name,
            ns,
            managed_fields.unwrap_or(false),
            &mut o,
        )?,
        Action::List {
            kind,
            page,
            field_selector,
        } => read::list(&mut c, kind, ns, page, field_selector.as_deref(), &mut o)?,
        Action::Describe { kind, name } => describe::describe(&mut c, kind, name, ns, &mut o)?,
        Action::Events {
            kind,
            name,
            warnings_only,
            limit,
        } => events::events(
            &mut c,
            ns,
            kind.as_deref(),
            name.as_deref(),
            warnings_only.unwrap_or(false),
            *limit,
            &mut o,
        )?,
        Action::Logs {
            name,
            container,
            tail,
            since_seconds,
            previous,
        } => {
            let (ns, logs) = logs::logs(
                &mut c,
                &logs::LogArgs {
                    name,
                    namespace: ns,
                    container: container.as_deref(),
                    tail: *tail,
                    since_seconds: *since_seconds,
                    previous: previous.unwrap_or(false),
                },
            )?;
            o.namespace = ns;
            o.logs = Some(logs);
        }
        Action::Top {
            kind,
            label_selector,
        } => {
            let (ns, usage) = top::top(&mut c, ns, kind.as_deref(), label_selector.as_deref())?;
            o.namespace = ns;
            o.usage = Some(usage);
        }
        Action::Diagnose { limit } => diagnose::diagnose(&mut c, ns, *limit, &mut o)?,
    }
    Ok(o)
}

infra_sdk::plugin!(tools: [
    Tool::new("k8s", "Kubernetes (read-only)", DESCRIPTION, run)
        .read_only()
        .idempotent()
        .open_world(),
]);
