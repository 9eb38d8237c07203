//! `namespaces`, `get` and `list`: objects by name, and collections as rows, paged through the
//! API with `limit` + `continue` so a large collection never arrives in one answer.

use infra_sdk::kube::{ApiResource, check_name, check_namespace, now_unix, query_string};
use infra_sdk::prelude::*;

use crate::args::Page;
use crate::caps::log;
use crate::discovery::{Cluster, list_namespace, object_namespace};
use crate::out::K8sOutput;
use crate::rows::{Row, row};

/// Objects the API is asked for per page: big pages, few round trips, bounded answers.
const PAGE: u32 = 500;

/// One collection read: where, with which selectors, how many.
pub struct ListQuery<'a> {
    /// The type.
    pub resource: &'a ApiResource,
    /// The namespace, or `None` for every namespace.
    pub namespace: Option<&'a str>,
    /// A label selector.
    pub label_selector: Option<&'a str>,
    /// A field selector.
    pub field_selector: Option<&'a str>,
    /// Objects wanted at most.
    pub limit: u32,
    /// Where a previous read stopped.
    pub continue_token: Option<&'a str>,
}

/// The objects a list read, where it stopped, and how many the server says remain.
pub struct Listed {
    /// The objects, at most `limit`.
    pub items: Vec<Value>,
    /// The token to resume after them, if there are more.
    pub continue_token: Option<String>,
    /// Objects remaining, when the server says.
    pub remaining: Option<u64>,
}

/// Reads up to `q.limit` objects, one page of at most [`PAGE`] at a time.
pub fn list_objects(c: &mut Cluster, q: &ListQuery) -> Result<Listed, ToolError> {
    let r = q.resource;
    let base = r.collection_path(q.namespace);
    let qualified = r.qualified();
    let mut out = Listed {
        items: vec![],
        continue_token: q.continue_token.map(str::to_string),
        remaining: None,
    };
    loop {
        let want = (q.limit as usize - out.items.len()).min(PAGE as usize);
        let mut params = vec![("limit", want.to_string())];
        for (k, v) in [
            ("labelSelector", q.label_selector),
            ("fieldSelector", q.field_selector),
            ("continue", out.continue_token.as_deref()),
        ] {
            if let Some(v) = v {
                params.push((k, v.to_string()));
            }
        }
        let access = c.client.access("list", &qualified, q.namespace, None);
        let page = c
            .client
            .get(&format!("{base}{}", query_string(&params)), &access)?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let got = items.len();
        // A server that ignores `limit` still yields at most what was asked for.
        out.items.extend(items.into_iter().take(want));
        out.continue_token = page["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        out.remaining = page["metadata"]["remainingItemCount"].as_u64();
        if out.continue_token.is_none() || got == 0 || out.items.len() >= q.limit as usize {
            break;
        }
        log::progress(
            out.items.len() as f64,
            Some(f64::from(q.limit)),
            Some(&format!("{} {qualified}", out.items.len())),
        );
    }
    Ok(out)
}

/// The rows of `objects`, all of kind `kind`.
pub fn rows(kind: &str, objects: &[Value]) -> Vec<Row> {
    let now = now_unix();
    objects.iter().map(|o| row(kind, o, now)).collect()
}

/// `namespaces`.
pub fn namespaces(c: &mut Cluster, page: &Page, o: &mut K8sOutput) -> Result<(), ToolError> {
    page.limit()?;
    let r = c.resolve("namespaces", "list")?;
    list_into(c, &r, None, page, None, o)
}

/// `list`.
pub fn list(
    c: &mut Cluster,
    kind: &str,
    namespace: Option<&str>,
    page: &Page,
    field_selector: Option<&str>,
    o: &mut K8sOutput,
) -> Result<(), ToolError> {
    // Arguments are checked before the first request, so a bad one costs no round trip.
    page.limit()?;
    let given = list_namespace(namespace)?;
    let r = c.resolve(kind, "list")?;
    let ns = if r.namespaced {
        given
    } else {
        if namespace.is_some() {
            o.notes.push(format!(
                "{} is cluster-scoped: `namespace` was ignored",
                r.qualified()
            ));
        }
        None
    };
    list_into(c, &r, ns.as_deref(), page, field_selector, o)
}

fn list_into(
    c: &mut Cluster,
    r: &ApiResource,
    namespace: Option<&str>,
    page: &Page,
    field_selector: Option<&str>,
    o: &mut K8sOutput,
) -> Result<(), ToolError> {
    let listed = list_objects(
        c,
        &ListQuery {
            resource: r,
            namespace,
            label_selector: page.label_selector.as_deref(),
            field_selector,
            limit: page.limit()?,
            continue_token: page.continue_token.as_deref(),
        },
    )?;
    let items = rows(&r.kind, &listed.items);
    o.count = Some(items.len());
    o.items = Some(items);
    o.continue_token = listed.continue_token;
    o.remaining = listed.remaining;
    o.namespace = namespace.map(str::to_string);
    o.resource = Some(r.clone());
    Ok(())
}

/// Reads one object of `r`.
pub fn get_object(
    c: &mut Cluster,
    r: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ToolError> {
    check_name("name", name)?;
    let qualified = r.qualified();
    let access = c.client.access("get", &qualified, namespace, Some(name));
    c.client.get(&r.object_path(namespace, name), &access)
}

/// `get`.
pub fn get(
    c: &mut Cluster,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    managed_fields: bool,
    o: &mut K8sOutput,
) -> Result<(), ToolError> {
    check_name("name", name)?;
    if let Some(ns) = namespace {
        check_namespace("namespace", ns)?;
    }
    let r = c.resolve(kind, "get")?;
    let ns = object_namespace(&r, namespace)?;
    let mut obj = get_object(c, &r, ns.as_deref(), name)?;
    if !managed_fields && let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    o.object = Some(obj);
    o.namespace = ns;
    o.resource = Some(r);
    Ok(())
}
