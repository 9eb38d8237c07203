//! The stand-in forge (`infra_tests::forge`) checked on its own with reqwest, so the `propose`
//! tests rest on a forge that behaves as GitHub's pull-request API does: 401 without the token,
//! 201 on create, 422 for a duplicate open pull request of the same head, the list by head, and
//! a merge that really merges in the bare repository.

use infra_tests::forge::ForgeApi;
use infra_tests::git::{commit_all, git, init, init_bare, write};
use serde_json::{Value, json};

async fn send(
    forge: &ForgeApi,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", forge.url()));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("the stand-in answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_stand_in_forge_creates_lists_refuses_duplicates_and_really_merges() {
    let dir = tempfile::tempdir().unwrap();
    let bare = init_bare(&dir.path().join("app.git"));
    let work = init(&dir.path().join("work"));
    write(&work, "app.yaml", "image: web:1\n");
    commit_all(&work, "first");
    let url = format!("file://{}", bare.display());
    git(&work, &["remote", "add", "origin", &url]);
    git(&work, &["push", "-q", "origin", "main"]);
    git(&work, &["switch", "-q", "-c", "bump"]);
    write(&work, "app.yaml", "image: web:2\n");
    let head = commit_all(&work, "bump web to 2");
    git(&work, &["push", "-q", "origin", "bump"]);

    let forge = ForgeApi::start().await.unwrap();
    forge.add_repo("acme/app", &bare);
    let token = forge.token();
    let pr = json!({"title": "Bump web", "head": "bump", "base": "main", "body": "to 2"});
    use reqwest::Method;

    let (status, out) = send(
        &forge,
        Method::POST,
        "/repos/acme/app/pulls",
        None,
        Some(pr.clone()),
    )
    .await;
    assert_eq!(status, 401, "{out}");
    let (status, _) = send(
        &forge,
        Method::POST,
        "/repos/acme/app/pulls",
        Some("wrong"),
        Some(pr.clone()),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        forge.pulls("acme/app").is_empty(),
        "nothing made without the token"
    );

    let (status, out) = send(
        &forge,
        Method::POST,
        "/repos/acme/app/pulls",
        Some(&token),
        Some(pr.clone()),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["number"], 1);
    assert_eq!(out["state"], "open");
    assert_eq!(out["merged"], false);
    assert_eq!(out["head"]["ref"], "bump");
    assert_eq!(out["head"]["sha"], head.trim());
    assert_eq!(out["base"]["ref"], "main");
    assert!(
        out["html_url"]
            .as_str()
            .unwrap()
            .ends_with("/acme/app/pull/1"),
        "{out}"
    );

    let (status, out) = send(
        &forge,
        Method::POST,
        "/repos/acme/app/pulls",
        Some(&token),
        Some(pr.clone()),
    )
    .await;
    assert_eq!(
        status, 422,
        "a second open pull request of the same head: {out}"
    );
    assert!(
        out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{out}"
    );
    let (status, _) = send(
        &forge,
        Method::POST,
        "/repos/acme/app/pulls",
        Some(&token),
        Some(json!({"title": "x", "head": "no-such-branch", "base": "main"})),
    )
    .await;
    assert_eq!(status, 422);

    let (status, list) = send(
        &forge,
        Method::GET,
        "/repos/acme/app/pulls?head=acme:bump&state=open",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (_, list) = send(
        &forge,
        Method::GET,
        "/repos/acme/app/pulls?head=acme:other&state=open",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(list, json!([]));
    let (status, one) = send(
        &forge,
        Method::GET,
        "/repos/acme/app/pulls/1",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["title"], "Bump web");

    let (status, merged) = send(
        &forge,
        Method::PUT,
        "/repos/acme/app/pulls/1/merge",
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["merged"], true);
    let sha = merged["sha"].as_str().unwrap();
    // The bare repository's main is now a merge commit of the old main and the head.
    let parents = git(&bare, &["rev-list", "--parents", "-n", "1", "main"]);
    assert!(
        parents.starts_with(sha) && parents.contains(head.trim()),
        "{parents}"
    );
    assert_eq!(git(&bare, &["show", "main:app.yaml"]), "image: web:2\n");
    let (_, one) = send(
        &forge,
        Method::GET,
        "/repos/acme/app/pulls/1",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(one["state"], "closed");
    assert_eq!(one["merged"], true);
    let (status, _) = send(
        &forge,
        Method::PUT,
        "/repos/acme/app/pulls/1/merge",
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 405, "a merged pull request cannot be merged again");

    // Closed by the test: a new pull request of the same head is allowed again.
    let (status, out) = send(
        &forge,
        Method::POST,
        "/repos/acme/app/pulls",
        Some(&token),
        Some(pr),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    forge.close("acme/app", 2);
    assert_eq!(forge.pulls("acme/app")[1]["state"], "closed");
    let seen = forge.requests();
    assert!(
        seen.iter()
            .any(|r| r.method == "PUT" && r.path == "/repos/acme/app/pulls/1/merge")
    );
    assert!(seen.iter().filter(|r| r.authorization.is_none()).count() >= 1);
}
