//! `describe`: one object with its events and its owner chain, what `kubectl describe` shows
//! an operator first.

use infra_sdk::kube::{check_name, now_unix};
use infra_sdk::prelude::*;

use crate::discovery::{Cluster, list_namespace, object_namespace};
use crate::events::{Subject, about, event_rows};
use crate::out::{K8sOutput, Owner};
use crate::read::get_object;
use crate::rows::row;

/// Owners followed at most (Pod → ReplicaSet → Deployment → an operator's CR is three).
const OWNER_DEPTH: usize = 5;
/// Events shown with the object.
const EVENTS_SHOWN: usize = 50;

/// The controlling owner reference of `obj` (or its first one).
fn owner_ref(obj: &Value) -> Option<&Value> {
    let refs = obj["metadata"]["ownerReferences"].as_array()?;
    refs.iter()
        .find(|r| r["controller"] == true)
        .or_else(|| refs.first())
}

/// `describe`.
pub fn describe(
    c: &mut Cluster,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    o: &mut K8sOutput,
) -> Result<(), ToolError> {
    check_name("name", name)?;
    list_namespace(namespace)?;
    let r = c.resolve(kind, "get")?;
    let ns = object_namespace(&r, namespace)?;
    let mut obj = get_object(c, &r, ns.as_deref(), name)?;
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    let now = now_unix();
    o.summary = Some(row(&r.kind, &obj, now));
    let events = about(
        c,
        &Subject {
            kind: &r.kind,
            namespace: ns.as_deref(),
            name,
            uid: obj["metadata"]["uid"].as_str(),
        },
        false,
    );
    match events {
        Ok(ev) => o.events = Some(event_rows(ev, EVENTS_SHOWN)),
        // The object was readable; missing events (no RBAC on events) should not hide it.
        Err(e) => o.notes.push(format!("events could not be read: {e}")),
    }
    let mut owners = Vec::new();
    let mut current = obj.clone();
    while owners.len() < OWNER_DEPTH {
        let Some(oref) = owner_ref(&current).cloned() else {
            break;
        };
        let (api_version, okind, oname) = (
            oref["apiVersion"].as_str().unwrap_or_default().to_string(),
            oref["kind"].as_str().unwrap_or_default().to_string(),
            oref["name"].as_str().unwrap_or_default().to_string(),
        );
        let mut owner = Owner {
            api_version: api_version.clone(),
            kind: okind.clone(),
            name: oname.clone(),
            summary: None,
            error: None,
        };
        let fetched = c.resolve_kind(&api_version, &okind).and_then(|or| {
            let ons = if or.namespaced { ns.clone() } else { None };
            get_object(c, &or, ons.as_deref(), &oname)
        });
        let next = match fetched {
            Ok(v) => {
                owner.summary = Some(row(&okind, &v, now));
                Some(v)
            }
            Err(e) => {
                owner.error = Some(e.message);
                None
            }
        };
        owners.push(owner);
        match next {
            Some(v) => current = v,
            None => break,
        }
    }
    o.owners = Some(owners);
    o.object = Some(obj);
    o.namespace = ns;
    o.resource = Some(r);
    Ok(())
}
