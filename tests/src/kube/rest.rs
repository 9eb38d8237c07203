//! The REST verbs on objects: path → resource, then get, list, create, update, delete, and
//! patch (server-side apply, merge patch), with dry runs and `Status` errors as the real API
//! server returns them. Runs under the store's lock: each request is atomic.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value, json};

use super::apply;
use super::discovery;
use super::logs::LogQuery;
use super::resources::Resource;
use super::select::{FieldSelector, LabelSelector};
use super::store::Store;
use super::table;

/// One request, as the router needs it.
pub struct Req {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    /// `Content-Type`.
    pub content_type: String,
    /// `Accept`.
    pub accept: String,
    /// `User-Agent` (the default field manager, as the real server derives it).
    pub user_agent: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The answer: status, content type, body.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

type R<T> = Result<T, Reply>;

fn ok(status: u16, v: &Value) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: v.to_string().into_bytes(),
    }
}

/// A `Status` failure as the API server writes it.
pub fn failure(code: u16, reason: &str, message: &str, details: Value) -> Reply {
    ok(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "details": details, "code": code}),
    )
}

fn not_found(res: &Resource, name: &str) -> Reply {
    failure(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", qualified(res)),
        json!({"name": name, "group": res.group, "kind": res.plural}),
    )
}

fn bad_request(message: &str) -> Reply {
    failure(400, "BadRequest", message, json!({}))
}

fn invalid(res: &Resource, name: &str, causes: &str) -> Reply {
    failure(
        422,
        "Invalid",
        &format!("{} \"{name}\" is invalid: {causes}", kind_group(res)),
        json!({"name": name, "group": res.group, "kind": res.kind}),
    )
}

/// `Deployment.apps`, `Pod`: how the server names a kind in messages.
fn kind_group(res: &Resource) -> String {
    if res.group.is_empty() {
        res.kind.clone()
    } else {
        format!("{}.{}", res.kind, res.group)
    }
}

/// `deployments.apps`, `pods`.
fn qualified(res: &Resource) -> String {
    if res.group.is_empty() {
        res.plural.clone()
    } else {
        format!("{}.{}", res.plural, res.group)
    }
}

/// What the path names.
struct Target {
    res: Resource,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

/// Answers one request.
pub fn route(store: &mut Store, req: &Req) -> Reply {
    match route_inner(store, req) {
        Ok(r) | Err(r) => r,
    }
}

fn route_inner(store: &mut Store, req: &Req) -> R<Reply> {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    if segs.iter().any(|s| *s == ".." || *s == ".") {
        return Err(bad_request(&format!(
            "the path {} has a '.' or '..' segment; name the resource path directly",
            req.path
        )));
    }
    let get = req.method == "GET";
    let (group, version, rest) = match segs.as_slice() {
        ["version"] if get => return Ok(ok(200, &discovery::version())),
        ["healthz" | "livez" | "readyz"] if get => {
            return Ok(Reply {
                status: 200,
                content_type: "text/plain",
                body: b"ok".to_vec(),
            });
        }
        ["api"] if get => return Ok(ok(200, &discovery::core_versions())),
        ["apis"] if get => return Ok(ok(200, &discovery::groups(store.served()))),
        ["apis", g] if get => {
            return discovery::group(store.served(), g)
                .map(|v| ok(200, &v))
                .ok_or_else(|| unknown_path(req));
        }
        ["api", v] | ["apis", _, v] if get && segs.len() <= 3 => {
            let g = if segs[0] == "api" { "" } else { segs[1] };
            return discovery::resource_list(store.served(), g, v)
                .map(|v| ok(200, &v))
                .ok_or_else(|| unknown_path(req));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(unknown_path(req)),
    };
    let target = resolve(store, group, version, rest).ok_or_else(|| unknown_path(req))?;
    if store.forbidden.contains(&target.res.plural) {
        let verb = match (req.method.as_str(), &target.name) {
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            _ => "delete",
        };
        let scope = target
            .ns
            .as_ref()
            .map_or(" at the cluster scope".to_string(), |n| {
                format!(" in the namespace \"{n}\"")
            });
        return Err(failure(
            403,
            "Forbidden",
            &format!(
                "{} is forbidden: User \"standin-admin\" cannot {verb} resource \"{}\" in API group \"{}\"{scope}",
                qualified(&target.res),
                target.res.plural,
                target.res.group
            ),
            json!({"group": target.res.group, "kind": target.res.plural}),
        ));
    }
    let dry_run = match req.query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(bad_request(&format!(
                "dryRun: unsupported value \"{other}\"; the only supported value is \"All\""
            )));
        }
    };
    if target.res.read_only && req.method != "GET" {
        return Err(failure(
            405,
            "MethodNotAllowed",
            &format!(
                "the server does not allow this method on the requested resource ({} is read-only)",
                qualified(&target.res)
            ),
            json!({}),
        ));
    }
    match (req.method.as_str(), &target.name, target.sub.as_deref()) {
        ("GET", None, _) => list(store, req, &target),
        ("GET", Some(name), Some("log")) if target.res.kind == "Pod" => {
            logs(store, req, &target, name)
        }
        ("GET", Some(name), None | Some("status")) => {
            let ns = target.ns.as_deref().unwrap_or("");
            let obj = store
                .get(&target.res, ns, name)
                .ok_or_else(|| not_found(&target.res, name))?;
            if wants_table(req) {
                let meta = json!({"resourceVersion": store.resource_version()});
                return Ok(ok(200, &table::table(&target.res.kind, &[obj], meta)));
            }
            Ok(ok(200, obj))
        }
        ("POST", None, None) => create(store, req, &target, dry_run),
        ("PUT", Some(name), None | Some("status")) => {
            let body = parse_json(req)?;
            update(store, req, &target, name, body, dry_run)
        }
        ("PATCH", Some(name), None | Some("status")) => patch(store, req, &target, name, dry_run),
        ("DELETE", Some(name), None) => {
            let ns = target.ns.as_deref().unwrap_or("");
            let obj = store
                .get(&target.res, ns, name)
                .cloned()
                .ok_or_else(|| not_found(&target.res, name))?;
            if !dry_run {
                store.remove(&target.res, ns, name);
            }
            Ok(ok(200, &obj))
        }
        ("DELETE", None, None) => {
            let items = select(store, req, &target)?;
            let names: Vec<(String, String)> = items
                .iter()
                .map(|o| {
                    (
                        o["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let out: Vec<Value> = items.into_iter().cloned().collect();
            if !dry_run {
                for (ns, name) in names {
                    store.remove(&target.res, &ns, &name);
                }
            }
            Ok(ok(
                200,
                &list_of(&target.res, out, store.resource_version(), None),
            ))
        }
        _ => Err(failure(
            405,
            "MethodNotAllowed",
            &format!(
                "the server does not allow this method on the requested resource ({} {})",
                req.method, req.path
            ),
            json!({}),
        )),
    }
}

fn unknown_path(req: &Req) -> Reply {
    failure(
        404,
        "NotFound",
        &format!(
            "the server could not find the requested resource ({} {})",
            req.method, req.path
        ),
        json!({}),
    )
}

/// `[namespaces, ns, plural, name?, sub?]` or `[plural, name?, sub?]`.
fn resolve(store: &Store, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let find = |plural: &str| store.resource(group, version, plural);
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(res) = find(plural).filter(|r| r.namespaced)
    {
        if tail.len() > 2 {
            return None;
        }
        return Some(Target {
            res,
            ns: Some(ns.to_string()),
            name: tail.first().map(|s| s.to_string()),
            sub: tail.get(1).map(|s| s.to_string()),
        });
    }
    let [plural, tail @ ..] = rest else {
        return None;
    };
    if tail.len() > 2 {
        return None;
    }
    let res = find(plural)?;
    // A namespaced kind without a namespace is only listed (across all namespaces).
    if res.namespaced && !tail.is_empty() {
        return None;
    }
    Some(Target {
        res,
        ns: None,
        name: tail.first().map(|s| s.to_string()),
        sub: tail.get(1).map(|s| s.to_string()),
    })
}

fn wants_table(req: &Req) -> bool {
    req.accept.contains("as=Table")
}

fn parse_json(req: &Req) -> R<Value> {
    serde_json::from_slice(&req.body).map_err(|e| {
        bad_request(&format!(
            "the request body is not valid JSON: {e}; send one object"
        ))
    })
}

fn list_of(res: &Resource, items: Vec<Value>, rv: String, cont: Option<String>) -> Value {
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(),
           "metadata": meta, "items": items})
}

/// The objects the request's namespace and selectors pick.
fn select<'a>(store: &'a Store, req: &Req, t: &'a Target) -> R<Vec<&'a Value>> {
    let labels = LabelSelector::parse(req.query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| bad_request(&e))?;
    let fields = FieldSelector::parse(req.query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| bad_request(&e))?;
    Ok(store
        .list(&t.res, t.ns.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect())
}

fn list(store: &Store, req: &Req, t: &Target) -> R<Reply> {
    if req
        .query
        .get("watch")
        .is_some_and(|w| w == "true" || w == "1")
    {
        return Err(failure(
            405,
            "MethodNotAllowed",
            "watch is not supported by the stand-in API server; poll with list instead",
            json!({}),
        ));
    }
    let items = select(store, req, t)?;
    let key = |o: &Value| {
        format!(
            "{}\u{0}{}",
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        )
    };
    let start = match req.query.get("continue").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => {
            let after = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    bad_request("continue: the token is not one this server issued; start the list again without it")
                })?;
            items.partition_point(|o| key(o) <= after)
        }
    };
    let limit = match req.query.get("limit").filter(|l| !l.is_empty()) {
        None => usize::MAX,
        Some(l) => match l.parse::<usize>() {
            Ok(0) => usize::MAX,
            Ok(n) => n,
            Err(_) => {
                return Err(bad_request(&format!(
                    "limit: \"{l}\" is not a non-negative integer"
                )));
            }
        },
    };
    let page: Vec<&Value> = items[start..].iter().take(limit).copied().collect();
    let page_len = page.len();
    let more = start + page_len < items.len();
    let cont = more.then(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(key(page.last().expect("a full page")))
    });
    let rv = store.resource_version();
    if wants_table(req) {
        let mut meta = json!({"resourceVersion": rv});
        if let Some(c) = cont {
            meta["continue"] = json!(c);
        }
        return Ok(ok(200, &table::table(&t.res.kind, &page, meta)));
    }
    let mut out = list_of(&t.res, page.into_iter().cloned().collect(), rv, cont);
    if more {
        out["metadata"]["remainingItemCount"] = json!(items.len() - start - page_len);
    }
    Ok(ok(200, &out))
}

/// The field manager: `fieldManager`, else the user agent's program name, as the server does.
fn manager(req: &Req) -> String {
    req.query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            req.user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string()
        })
}

/// Checks an incoming object against the target: kind, apiVersion, name, namespace.
fn check_body(store: &Store, t: &Target, body: &Value, name: Option<&str>) -> R<String> {
    if !body.is_object() || !body["metadata"].is_object() && !body["metadata"].is_null() {
        return Err(bad_request(
            "the body must be one object with a metadata map",
        ));
    }
    let (av, kind) = (body["apiVersion"].as_str(), body["kind"].as_str());
    if av.is_some_and(|a| a != t.res.api_version()) || kind.is_some_and(|k| k != t.res.kind) {
        return Err(bad_request(&format!(
            "the body is {} {} but the URL is for {} {}; send the object to its own resource path",
            av.unwrap_or("?"),
            kind.unwrap_or("?"),
            t.res.api_version(),
            t.res.kind
        )));
    }
    let body_name = body["metadata"]["name"].as_str().filter(|n| !n.is_empty());
    let obj_name = match (name, body_name) {
        (Some(u), Some(b)) if u != b => {
            return Err(bad_request(&format!(
                "the name of the object ({b}) does not match the name on the URL ({u})"
            )));
        }
        (_, Some(b)) => b.to_string(),
        (_, None) => {
            return Err(invalid(
                &t.res,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
    };
    let valid = obj_name.len() <= 253
        && obj_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && obj_name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && obj_name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(invalid(
            &t.res,
            &obj_name,
            &format!(
                "metadata.name: Invalid value: \"{obj_name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if let (Some(b), Some(u)) = (body["metadata"]["namespace"].as_str(), t.ns.as_deref())
        && !b.is_empty()
        && b != u
    {
        return Err(bad_request(&format!(
            "the namespace of the provided object ({b}) does not match the namespace sent on the request ({u})"
        )));
    }
    if t.res.namespaced {
        let ns = t.ns.as_deref().unwrap_or("");
        if !store.namespace_exists(ns) {
            return Err(failure(
                404,
                "NotFound",
                &format!("namespaces \"{ns}\" not found"),
                json!({"name": ns, "kind": "namespaces"}),
            ));
        }
    }
    if t.res.kind == "CustomResourceDefinition" {
        super::resources::from_crd(body).map_err(|e| invalid(&t.res, &obj_name, &e))?;
    }
    Ok(obj_name)
}

fn create(store: &mut Store, req: &Req, t: &Target, dry_run: bool) -> R<Reply> {
    let mut body = parse_json(req)?;
    if body["metadata"]["name"].as_str().is_none_or(str::is_empty)
        && let Some(prefix) = body["metadata"]["generateName"].as_str()
    {
        body["metadata"]["name"] = json!(format!("{prefix}{}", store.resource_version()));
    }
    let name = check_body(store, t, &body, None)?;
    if t.res.kind == "Namespace" && body["status"]["phase"].is_null() {
        body["status"] = json!({"phase": "Active"});
    }
    let ns = t.ns.clone().unwrap_or_default();
    if store.get(&t.res, &ns, &name).is_some() {
        return Err(failure(
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", qualified(&t.res)),
            json!({"name": name, "group": t.res.group, "kind": t.res.plural}),
        ));
    }
    let mut obj = store.prepare(&t.res, &ns, body, None);
    apply::record_update(None, &mut obj, &manager(req), None);
    Ok(ok(201, &write(store, t, &ns, obj, dry_run)))
}

fn write(store: &mut Store, t: &Target, ns: &str, obj: Value, dry_run: bool) -> Value {
    if dry_run {
        return obj;
    }
    let stored = store.commit(&t.res, ns, obj);
    super::flux::after_write(store, &t.res, ns, &stored);
    stored
}

/// The new object for a write to the main resource (status kept) or to `/status` (only
/// status taken).
fn with_status_rule(t: &Target, old: &Value, mut new: Value) -> Value {
    if t.sub.as_deref() == Some("status") {
        let mut out = old.clone();
        out["status"] = new["status"].take();
        out
    } else {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        new
    }
}

fn update(
    store: &mut Store,
    req: &Req,
    t: &Target,
    name: &str,
    body: Value,
    dry_run: bool,
) -> R<Reply> {
    check_body(store, t, &body, Some(name))?;
    let ns = t.ns.clone().unwrap_or_default();
    let old = store
        .get(&t.res, &ns, name)
        .cloned()
        .ok_or_else(|| not_found(&t.res, name))?;
    if let Some(rv) = body["metadata"]["resourceVersion"]
        .as_str()
        .filter(|r| !r.is_empty())
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(failure(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(&t.res)
            ),
            json!({"name": name, "group": t.res.group, "kind": t.res.plural}),
        ));
    }
    let new = with_status_rule(t, &old, body);
    let mut obj = store.prepare(&t.res, &ns, new, Some(&old));
    apply::record_update(Some(&old), &mut obj, &manager(req), t.sub.as_deref());
    Ok(ok(200, &write(store, t, &ns, obj, dry_run)))
}

fn patch(store: &mut Store, req: &Req, t: &Target, name: &str, dry_run: bool) -> R<Reply> {
    let ns = t.ns.clone().unwrap_or_default();
    let old = store.get(&t.res, &ns, name).cloned();
    let ct = req.content_type.split(';').next().unwrap_or("").trim();
    match ct {
        "application/apply-patch+yaml" | "application/apply-patch+json" => {
            let text = String::from_utf8_lossy(&req.body);
            let config: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
                bad_request(&format!("the apply configuration is not valid YAML: {e}"))
            })?;
            let Some(manager) = req.query.get("fieldManager").filter(|m| !m.is_empty()) else {
                return Err(bad_request(
                    "PATCH with apply-patch: fieldManager is required; add ?fieldManager=<your tool's name>",
                ));
            };
            if config["apiVersion"].as_str().is_none() || config["kind"].as_str().is_none() {
                return Err(bad_request(
                    "apply configuration: apiVersion and kind must be set",
                ));
            }
            let name = check_body(store, t, &config, Some(name))?;
            let force = req.query.get("force").is_some_and(|f| f == "true");
            let config = if t.sub.as_deref() == Some("status") {
                json!({"apiVersion": config["apiVersion"], "kind": config["kind"],
                       "metadata": {"name": name}, "status": config["status"]})
            } else {
                config
            };
            let merged = apply::apply(old.as_ref(), &config, manager, force).map_err(|conflicts| {
                failure(
                    409,
                    "Conflict",
                    &format!(
                        "Apply failed with {} conflict{}: {}",
                        conflicts.len(),
                        if conflicts.len() == 1 { "" } else { "s" },
                        conflicts.join("\n")
                    ),
                    json!({"name": name, "group": t.res.group, "kind": t.res.plural,
                           "causes": conflicts.iter().map(|c| json!({"reason": "FieldManagerConflict", "message": c})).collect::<Vec<_>>()}),
                )
            })?;
            let merged = match &old {
                Some(o) => with_status_rule(t, o, merged),
                None => merged,
            };
            let created = old.is_none();
            let obj = store.prepare(&t.res, &ns, merged, old.as_ref());
            Ok(ok(
                if created { 201 } else { 200 },
                &write(store, t, &ns, obj, dry_run),
            ))
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            // A strategic merge patch is treated as a merge patch: lists replace rather than
            // merge by key — enough for the patches the tests send (annotations, replicas).
            let old = old.ok_or_else(|| not_found(&t.res, name))?;
            let p = parse_json(req)?;
            let mut new = old.clone();
            apply::merge_patch(&mut new, &p);
            let new = if t.sub.as_deref() == Some("status") {
                let mut out = old.clone();
                out["status"] = new["status"].take();
                out
            } else {
                with_status_rule(t, &old, new)
            };
            check_body(store, t, &new, Some(name))?;
            let mut obj = store.prepare(&t.res, &ns, new, Some(&old));
            apply::record_update(Some(&old), &mut obj, &manager(req), t.sub.as_deref());
            Ok(ok(200, &write(store, t, &ns, obj, dry_run)))
        }
        other => Err(failure(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format ({other}); use application/apply-patch+yaml or application/merge-patch+json"
            ),
            json!({}),
        )),
    }
}

fn logs(store: &Store, req: &Req, t: &Target, pod: &str) -> R<Reply> {
    let ns = t.ns.as_deref().unwrap_or("");
    let obj = store
        .get(&t.res, ns, pod)
        .ok_or_else(|| not_found(&t.res, pod))?;
    let mut names: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| obj["spec"][k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    let app_containers = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
    let num = |k: &str| -> R<Option<u64>> {
        req.query
            .get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    bad_request(&format!("{k}: \"{v}\" is not a non-negative integer"))
                })
            })
            .transpose()
    };
    let q = LogQuery {
        container: req
            .query
            .get("container")
            .filter(|c| !c.is_empty())
            .cloned(),
        tail_lines: num("tailLines")?.map(|n| n as usize),
        since_seconds: num("sinceSeconds")?,
        previous: req.query.get("previous").is_some_and(|p| p == "true"),
    };
    names.dedup();
    let container = match &q.container {
        Some(c) if names.is_empty() || names.contains(c) => c.clone(),
        Some(c) => {
            return Err(bad_request(&format!(
                "container {c} is not valid for pod {pod}; choose one of: [{}]",
                names.join(" ")
            )));
        }
        None if app_containers == 1 => obj["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        None if names.is_empty() && store.logs.has_container(ns, pod, "") => String::new(),
        None => {
            return Err(bad_request(&format!(
                "a container name must be specified for pod {pod}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let text = match store.logs.read(ns, pod, &container, &q) {
        Some(t) => t,
        None if q.previous => {
            return Err(bad_request(&format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            )));
        }
        None => String::new(),
    };
    Ok(Reply {
        status: 200,
        content_type: "text/plain",
        body: text.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Reply {
        let req = Req {
            method: "GET".into(),
            path: path.into(),
            query: HashMap::new(),
            content_type: String::new(),
            accept: String::new(),
            user_agent: String::new(),
            body: Vec::new(),
        };
        route(&mut Store::default(), &req)
    }

    #[test]
    fn dot_segments_and_unknown_paths_are_refused() {
        // Clients normalise these away, so only a hand-made request carries them.
        assert_eq!(get("/api/v1/namespaces/x/../secrets").status, 400);
        assert_eq!(get("/api/v1/./pods").status, 400);
        assert_eq!(get("/api/v1/nothings").status, 404);
        assert_eq!(
            get("/apis/apps/v1/namespaces/x/deployments/a/b/c").status,
            404
        );
        assert_eq!(get("/api/v1/namespaces/x/pods").status, 200);
    }
}
