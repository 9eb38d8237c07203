//! `paginate`: follows pages by Link header, page number, offset or cursor, within bounds.

use crate::caps::{http, log};
use infra_sdk::prelude::*;

use crate::args::{PageMode, Paging, Target, with_query};
use crate::respond::{HttpOutput, header_map};

/// The `rel="next"` target of a Link header, if any.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .replace(' ', "")
                .eq_ignore_ascii_case("rel=\"next\"")
                || p.trim() == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// The value at a dot path (`a.b.0.c`).
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(v, |cur, key| match cur {
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            Value::Object(o) => o.get(key),
            _ => None,
        })
}

/// The items of one page.
fn items_of(page: &Value, items_path: Option<&str>) -> Result<Vec<Value>, ToolError> {
    let found = match items_path {
        Some(p) => at_path(page, p),
        None if page.is_array() => Some(page),
        None => ["items", "data", "results"]
            .iter()
            .find_map(|k| page.get(k)),
    };
    match found {
        Some(Value::Array(a)) => Ok(a.clone()),
        _ => Err(ToolError::invalid(
            "items_path",
            "no item array found in the page; set `items_path` to the dot path of the array, e.g. \"data.items\"",
        )),
    }
}

/// Runs `paginate`.
pub fn run(target: &Target, args: &Paging, ctx: &Ctx) -> Result<HttpOutput, ToolError> {
    let mode = args.page_mode.unwrap_or_default();
    let max_pages = args.max_pages.unwrap_or(10).clamp(1, 100);
    let max_items = args.max_items.unwrap_or(1000) as usize;
    let param = args.page_param.clone().unwrap_or_else(|| match mode {
        PageMode::Offset => "offset".into(),
        PageMode::Cursor => "cursor".into(),
        _ => "page".into(),
    });
    if mode == PageMode::Cursor && args.cursor_path.is_none() {
        return Err(ToolError::invalid(
            "cursor_path",
            "cursor mode needs `cursor_path`, the dot path of the next cursor in each page",
        ));
    }
    let first = crate::build_request(target, ctx, crate::args::INLINE_MAX)?;
    let mut position = args
        .start
        .unwrap_or(if mode == PageMode::Offset { 0 } else { 1 });
    let mut url = match mode {
        PageMode::Page | PageMode::Offset => {
            with_query(&first.url, [(&param, &Value::from(position))])
        }
        _ => first.url.clone(),
    };
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next: Option<String> = None;
    while pages < max_pages {
        let mut req = first.clone();
        req.url = url.clone();
        let resp = http::send(&req)?;
        pages += 1;
        if !(200..300).contains(&resp.status) {
            return Err(ToolError::failed(format!(
                "page {pages} ({url}) answered status {}; fix the request or lower `max_pages`",
                resp.status
            )));
        }
        let headers = header_map(&resp.headers);
        let page: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            ToolError::failed(format!(
                "page {pages} is not JSON ({e}); paginate reads JSON pages"
            ))
        })?;
        let got = items_of(&page, args.items_path.as_deref())?;
        let count = got.len() as u64;
        items.extend(got);
        log::progress(
            pages as f64,
            Some(max_pages as f64),
            Some(&format!("{} items", items.len())),
        );
        next = match mode {
            PageMode::Link => headers.get("link").and_then(|l| next_link(l)),
            PageMode::Page => (count > 0).then(|| {
                position += 1;
                with_query(&first.url, [(&param, &Value::from(position))])
            }),
            PageMode::Offset => (count > 0).then(|| {
                position += count;
                with_query(&first.url, [(&param, &Value::from(position))])
            }),
            PageMode::Cursor => at_path(&page, args.cursor_path.as_deref().unwrap_or_default())
                .filter(|c| !c.is_null() && c.as_str() != Some(""))
                .map(|c| with_query(&first.url, [(&param, c)])),
        };
        if items.len() >= max_items {
            items.truncate(max_items);
            break;
        }
        match &next {
            Some(n) => url = n.clone(),
            None => break,
        }
    }
    Ok(HttpOutput {
        items: Some(items),
        pages: Some(pages),
        next,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_in_link_header() {
        let link = r#"<https://a/x?page=1>; rel="prev", <https://a/x?page=3>; rel="next""#;
        assert_eq!(next_link(link).as_deref(), Some("https://a/x?page=3"));
        assert_eq!(next_link(r#"<https://a/x?page=1>; rel="prev""#), None);
    }

    #[test]
    fn walks_dot_paths() {
        let v = json!({"data": {"items": [1, {"id": 7}]}});
        assert_eq!(at_path(&v, "data.items.1.id"), Some(&json!(7)));
        assert_eq!(at_path(&v, "data.nope"), None);
    }
}
