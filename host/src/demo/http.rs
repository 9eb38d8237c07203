//! The demo's HTTP steps, against its own loopback server.

use serde_json::json;

use super::Demo;
use super::server::DemoServer;

/// GET, a host-injected credential, pagination, a download, and two denials.
pub(super) async fn steps(d: &mut Demo, server: &DemoServer, token: &str) {
    let base = server.base_url();
    let (err, out) = d
        .call(
            "A plain GET, made by the host on the plugin's behalf",
            "http",
            json!({"action": "request", "url": format!("{base}/hello")}),
        )
        .await;
    println!("   → status {} json {}", out["status"], out["json"]);
    d.expect("GET /hello answered 200", !err && out["status"] == 200);

    let (err, out) = d
        .call(
            "A call with a profile: the host injects the bearer token; the plugin never holds it",
            "http",
            json!({"action": "request", "profile": "demo-api", "url": "/reflect-auth"}),
        )
        .await;
    let reached = server.saw_authorization(&format!("Bearer {token}"));
    println!(
        "   → the server echoed back what it received: {}",
        out["json"]
    );
    d.expect("the token reached the server", !err && reached);
    d.expect(
        "the token does not appear in the tool output (scrubbed by the host)",
        !out.to_string().contains(token),
    );

    let (err, out) = d
        .call(
            "Pagination by Link header",
            "http",
            json!({"action": "paginate", "url": format!("{base}/items?per_page=10&total=35")}),
        )
        .await;
    println!(
        "   → {} items over {} pages",
        out["items"].as_array().map_or(0, Vec::len),
        out["pages"]
    );
    d.expect(
        "35 items over 4 pages",
        !err && out["items"].as_array().map_or(0, Vec::len) == 35 && out["pages"] == 4,
    );

    let (err, out) = d
        .call(
            "A download streamed by the host into the artifact store",
            "http",
            json!({"action": "download", "url": format!("{base}/bytes?n=1048576")}),
        )
        .await;
    println!(
        "   → {} ({} bytes, sha256 {}…)",
        out["artifact"]["uri"],
        out["artifact"]["size"],
        out["artifact"]["sha256"]
            .as_str()
            .unwrap_or("?")
            .get(..12)
            .unwrap_or("?")
    );
    d.expect(
        "1 MiB stored as an artifact",
        !err && out["artifact"]["size"] == 1_048_576,
    );

    let (err, out) = d
        .call(
            "Denied by policy: the cloud metadata endpoint",
            "http",
            json!({"action": "request", "url": "http://169.254.169.254/latest/meta-data/"}),
        )
        .await;
    println!("   → {}", out["error"]["message"].as_str().unwrap_or("?"));
    d.expect(
        "denied, with the policy line to change",
        err && out["error"]["kind"] == "denied",
    );

    let (err, out) = d.call(
        "Denied mid-flight: a granted server redirects to the metadata endpoint",
        "http",
        json!({"action": "request", "url": format!("{base}/redirect?to=http://169.254.169.254/latest/meta-data/")}),
    )
    .await;
    println!("   → {}", out["error"]["message"].as_str().unwrap_or("?"));
    d.expect(
        "the redirect hop was re-checked and denied",
        err && out["error"]["kind"] == "denied",
    );
}
