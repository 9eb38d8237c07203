//! The gitops plugin's Terraform actions through the real binary, with the real `terraform`
//! and only `terraform_data` resources of the built-in provider (no download): plan → apply
//! applies exactly the reviewed plan, a tampered or stale plan is refused, destroy is planned
//! then applied, a protected root needs the user's typed approval, a sensitive variable's
//! canary never surfaces, a hostile configuration's `local-exec` (and a provider it ships)
//! cannot read or write outside the root nor open a TCP connection, a plugin running
//! `terraform apply` itself without an approval is refused by the host, and bad input names its
//! field.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use infra_tests::elicit::{self, Reply};
use infra_tests::{Home, Mcp, audit_records, canary, contains, test_plugin};
use rmcp::ClientHandler;
use serde_json::{Value, json};

/// The terraform the tests run: /usr/local/bin/terraform, or the one on PATH.
fn terraform() -> PathBuf {
    let fixed = PathBuf::from("/usr/local/bin/terraform");
    if fixed.exists() {
        return fixed;
    }
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v terraform"])
        .output()
        .expect("sh");
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !found.is_empty(),
        "terraform is not installed: scripts/test.sh installs it (HashiCorp apt repository or a registry package)"
    );
    PathBuf::from(found)
}

/// A root `infra` (protected when asked) holding the configuration in `stack/`, a directory
/// outside the root, and a state directory granting the gitops plugin terraform there.
struct Tf {
    home: Home,
    root: tempfile::TempDir,
    outside: tempfile::TempDir,
}

/// Two resources; `size` (plain, default "1") feeds `a`; `secret` (sensitive) feeds `s`.
const CONFIG: &str = r#"
variable "size" {
  type    = string
  default = "1"
}
variable "secret" {
  type      = string
  sensitive = true
  default   = "plain-default"
}
resource "terraform_data" "a" {
  input = "a-${var.size}"
}
resource "terraform_data" "s" {
  input = "token-${var.secret}"
}
"#;

impl Tf {
    fn new(protected: bool) -> Tf {
        let home = Home::new();
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("stack")).unwrap();
        home.policy(&format!(
            r#"
[roots]
infra = {{ path = "{root}", read_only = false, protected = {protected} }}
[programs]
terraform = "{tf}"
[plugin.gitops.exec]
programs = ["terraform"]
roots = ["infra"]
env = ["TF_VAR_*"]
read_only = false
[plugin.gitops.fs]
roots = ["infra"]
read_only = false
[plugin.gitops.guard]
windows = []
lock_ttl_secs = 600
[plugin.gitops.artifacts]
[plugin.gitops.log]
"#,
            root = root.path().display(),
            tf = terraform().display(),
        ));
        let tf = Tf {
            home,
            root,
            outside,
        };
        tf.write("main.tf", CONFIG);
        tf
    }

    fn stack(&self) -> PathBuf {
        self.root.path().join("stack")
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.stack().join(file), text).unwrap();
    }

    /// The addresses of the resources in the state, sorted.
    fn state(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.stack().join("terraform.tfstate")) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut out: Vec<String> = v["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{}.{}", text_of(&r["type"]), text_of(&r["name"])))
            .collect();
        out.sort();
        out
    }

    /// The `input` of resource `name` in the state.
    fn input(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.stack().join("terraform.tfstate")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| {
                // A dynamic attribute: the state keeps it as {"value", "type"}.
                let input = &r["instances"][0]["attributes"]["input"];
                text_of(input.get("value").unwrap_or(input)).to_string()
            })
            .unwrap_or_default()
    }

    fn guard_events(&self) -> Vec<Value> {
        audit_records(self.home.path())
            .into_iter()
            .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["cap"] == "guard")
            .collect()
    }
}

fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn args(action: &str, extra: Value) -> Value {
    let mut a = json!({"action": action, "root": "infra", "path": "stack"});
    if let (Some(o), Value::Object(e)) = (a.as_object_mut(), extra) {
        o.extend(e);
    }
    a
}

async fn ok<H: ClientHandler>(mcp: &Mcp<H>, action: &str, extra: Value) -> Value {
    let a = args(action, extra);
    let (err, out) = mcp.call("gitops", a.clone()).await;
    assert!(!err, "{a} failed: {out}");
    out
}

async fn fails<H: ClientHandler>(mcp: &Mcp<H>, action: &str, extra: Value) -> Value {
    let a = args(action, extra);
    let (err, out) = mcp.call("gitops", a.clone()).await;
    assert!(err, "{a} should fail: {out}");
    out
}

fn message(out: &Value) -> String {
    text_of(&out["error"]["message"]).to_string()
}

fn changes(plan: &Value) -> Vec<String> {
    let mut v: Vec<String> = plan["summary"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", text_of(&c["action"]), text_of(&c["address"])))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn plan_then_apply_applies_exactly_the_reviewed_plan() {
    let tf = Tf::new(false);
    let mcp = tf.home.mcp().await;
    let out = ok(&mcp, "tf_plan", json!({"vars": {"size": "3"}})).await;
    let plan = &out["tf_plan"];
    assert_eq!(
        changes(plan),
        ["create terraform_data.a", "create terraform_data.s"]
    );
    assert_eq!(plan["summary"]["counts"]["add"], 2, "{out}");
    let sha = text_of(&plan["plan_sha256"]).to_string();
    assert_eq!(sha.len(), 64);
    assert!(text_of(&plan["plan_json"]["uri"]).starts_with("artifact://"));
    assert!(tf.state().is_empty(), "a plan changes nothing");

    // The configuration changes after the review: what is applied is the plan, not the files.
    tf.write(
        "more.tf",
        "resource \"terraform_data\" \"late\" {\n  input = \"x\"\n}\n",
    );
    // Without apply: true, the checked plan only.
    let out = ok(&mcp, "tf_apply", json!({"plan_sha256": sha})).await;
    assert!(out["tf_apply"]["result"].is_null(), "{out}");
    assert!(text_of(&out["notes"][0]).contains("apply: true"), "{out}");
    assert!(tf.state().is_empty());

    let out = ok(&mcp, "tf_apply", json!({"plan_sha256": sha, "apply": true})).await;
    assert!(
        text_of(&out["tf_apply"]["result"]).contains("2 added, 0 changed, 0 destroyed"),
        "{out}"
    );
    assert_eq!(
        out["tf_apply"]["approval"]["approved_by"], "policy",
        "{out}"
    );
    assert_eq!(tf.state(), ["terraform_data.a", "terraform_data.s"]);
    assert_eq!(tf.input("a"), "a-3", "the `vars` value was used");

    // The plan is spent.
    let out = fails(&mcp, "tf_apply", json!({"plan_sha256": sha, "apply": true})).await;
    assert_eq!(out["error"]["field"], "plan_sha256", "{out}");
    // The new resource shows up in the next plan.
    let out = ok(&mcp, "tf_plan", json!({"vars": {"size": "3"}})).await;
    assert_eq!(changes(&out["tf_plan"]), ["create terraform_data.late"]);
    // The guard approved the workspace by its root and path, and released its lock.
    let events = tf.guard_events();
    assert!(
        events.iter().any(|e| e["target"] == "terraform:infra:stack"
            && text_of(&e["detail"]).contains("approved by policy")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| text_of(&e["detail"]).contains("released"))
    );
}

#[tokio::test]
async fn a_tampered_plan_is_refused_and_nothing_is_applied() {
    let tf = Tf::new(false);
    let mcp = tf.home.mcp().await;
    let out = ok(&mcp, "tf_plan", json!({})).await;
    let sha = text_of(&out["tf_plan"]["plan_sha256"]).to_string();
    let file = tf.root.path().join(text_of(&out["tf_plan"]["plan_file"]));
    let mut bytes = std::fs::read(&file).expect("the plan file is kept in the working dir");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let out = fails(&mcp, "tf_apply", json!({"plan_sha256": sha, "apply": true})).await;
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    let m = message(&out);
    assert!(
        m.contains("changed after tf_plan") && m.contains("tf_plan again"),
        "{m}"
    );
    assert!(tf.state().is_empty(), "nothing applied");

    // Another plan's file put under this name is refused the same way.
    let other = ok(&mcp, "tf_plan", json!({})).await;
    let other_file = tf.root.path().join(text_of(&other["tf_plan"]["plan_file"]));
    std::fs::copy(&other_file, &file).unwrap();
    let out = fails(&mcp, "tf_apply", json!({"plan_sha256": sha, "apply": true})).await;
    assert!(message(&out).contains("changed after tf_plan"), "{out}");
    assert!(tf.state().is_empty());
}

#[tokio::test]
async fn a_stale_plan_is_refused_asking_to_plan_again() {
    let tf = Tf::new(false);
    let mcp = tf.home.mcp().await;
    let first = ok(&mcp, "tf_plan", json!({})).await;
    let first = text_of(&first["tf_plan"]["plan_sha256"]).to_string();
    let second = ok(&mcp, "tf_plan", json!({"vars": {"size": "2"}})).await;
    let second = text_of(&second["tf_plan"]["plan_sha256"]).to_string();
    assert_ne!(first, second);
    ok(
        &mcp,
        "tf_apply",
        json!({"plan_sha256": second, "apply": true}),
    )
    .await;
    assert_eq!(tf.input("a"), "a-2");
    let out = fails(
        &mcp,
        "tf_apply",
        json!({"plan_sha256": first, "apply": true}),
    )
    .await;
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    let m = message(&out);
    assert!(m.contains("stale") && m.contains("tf_plan again"), "{m}");
    assert_eq!(
        tf.input("a"),
        "a-2",
        "the state is as the second apply left it"
    );
}

#[tokio::test]
async fn destroy_is_planned_then_applied() {
    let tf = Tf::new(false);
    let mcp = tf.home.mcp().await;
    let out = ok(&mcp, "tf_plan", json!({})).await;
    let sha = text_of(&out["tf_plan"]["plan_sha256"]).to_string();
    ok(&mcp, "tf_apply", json!({"plan_sha256": sha, "apply": true})).await;
    assert_eq!(tf.state().len(), 2);

    // Even with apply: true, no plan_sha256 means: make the destroy plan.
    let out = ok(&mcp, "tf_destroy", json!({"apply": true})).await;
    let plan = &out["tf_plan"];
    assert_eq!(plan["destroy"], true, "{out}");
    assert_eq!(
        changes(plan),
        ["delete terraform_data.a", "delete terraform_data.s"]
    );
    assert_eq!(tf.state().len(), 2, "planning destroys nothing");
    let dsha = text_of(&plan["plan_sha256"]).to_string();

    // A plan that creates is not a destroy plan.
    let create = ok(&mcp, "tf_plan", json!({"vars": {"size": "9"}})).await;
    let csha = text_of(&create["tf_plan"]["plan_sha256"]).to_string();
    let out = fails(
        &mcp,
        "tf_destroy",
        json!({"plan_sha256": csha, "apply": true}),
    )
    .await;
    assert_eq!(out["error"]["field"], "plan_sha256", "{out}");

    let out = ok(&mcp, "tf_destroy", json!({"plan_sha256": dsha})).await;
    assert!(
        out["tf_apply"]["result"].is_null(),
        "without apply: true: {out}"
    );
    assert_eq!(tf.state().len(), 2);
    let out = ok(
        &mcp,
        "tf_destroy",
        json!({"plan_sha256": dsha, "apply": true}),
    )
    .await;
    assert!(
        text_of(&out["tf_apply"]["result"]).contains("2 destroyed"),
        "{out}"
    );
    assert!(tf.state().is_empty());
}

#[tokio::test]
async fn a_protected_root_is_destroyed_only_with_the_users_typed_approval() {
    let tf = Tf::new(true);
    let target = "infra:stack";
    let (yes, asked) = elicit::connect(&tf.home, Some(Reply::Accept(target.into()))).await;
    let out = ok(&yes, "tf_plan", json!({})).await;
    let sha = text_of(&out["tf_plan"]["plan_sha256"]).to_string();
    let out = ok(&yes, "tf_apply", json!({"plan_sha256": sha, "apply": true})).await;
    assert_eq!(out["tf_apply"]["approval"]["approved_by"], "user", "{out}");
    let q = asked.lock().unwrap()[0].message.clone();
    for part in [
        "kind: terraform",
        "target: infra:stack",
        "+ terraform_data.a (create)",
    ] {
        assert!(q.contains(part), "{part}: {q}");
    }
    let out = ok(&yes, "tf_destroy", json!({})).await;
    let dsha = text_of(&out["tf_plan"]["plan_sha256"]).to_string();

    // No way to ask (infra call), a client without elicitation, a user who declines, one who
    // types something else: refused, audited, nothing destroyed.
    let (err, out, _) = tf.home.call(
        "gitops",
        &args("tf_destroy", json!({"plan_sha256": dsha, "apply": true})),
    );
    assert!(err && out["error"]["kind"] == "denied", "{out}");
    for reply in [
        None,
        Some(Reply::Decline),
        Some(Reply::Accept("yes".into())),
    ] {
        let (mcp, _) = elicit::connect(&tf.home, reply.clone()).await;
        let out = fails(
            &mcp,
            "tf_destroy",
            json!({"plan_sha256": dsha, "apply": true}),
        )
        .await;
        assert_eq!(out["error"]["kind"], "denied", "{reply:?}: {out}");
        assert_eq!(tf.state().len(), 2, "{reply:?}");
    }
    let denials = tf
        .guard_events()
        .into_iter()
        .filter(|e| e["decision"] == "deny" && e["target"] == "terraform:infra:stack")
        .count();
    assert!(denials >= 4, "every refusal is audited");

    let out = ok(
        &yes,
        "tf_destroy",
        json!({"plan_sha256": dsha, "apply": true}),
    )
    .await;
    assert_eq!(out["tf_apply"]["approval"]["approved_by"], "user", "{out}");
    assert!(tf.state().is_empty());
}

#[tokio::test]
async fn a_sensitive_variables_canary_never_surfaces() {
    let tf = Tf::new(false);
    let secret = canary("tf-sensitive");
    tf.write("secret.tfvars", &format!("secret = \"{secret}\"\n"));
    let files = json!({"var_files": ["secret.tfvars"]});
    // Through `infra call`, so the server's stderr is seen too.
    let (err, plan, stderr) = tf.home.call("gitops", &args("tf_plan", files.clone()));
    assert!(!err, "{plan}");
    let sha = text_of(&plan["tf_plan"]["plan_sha256"]).to_string();
    let uri = text_of(&plan["tf_plan"]["plan_json"]["uri"]).to_string();
    let (err, json_art, _) = tf.home.call(
        "artifacts",
        &json!({"action": "get", "uri": uri, "length": 262144}),
    );
    assert!(!err, "{json_art}");
    let art = json_art.to_string();
    assert!(
        art.contains("(sensitive value)"),
        "the plan JSON is there, redacted: {art}"
    );
    let (err, applied, stderr2) = tf.home.call(
        "gitops",
        &args("tf_apply", json!({"plan_sha256": sha, "apply": true})),
    );
    assert!(!err, "{applied}");
    assert!(
        tf.input("s").contains(&secret),
        "the canary really reached terraform"
    );
    for (what, text) in [
        ("plan answer", plan.to_string()),
        ("plan JSON artifact", art),
        ("apply answer", applied.to_string()),
        ("stderr", format!("{stderr}{stderr2}")),
    ] {
        assert!(!text.contains(&secret), "canary in the {what}: {text}");
    }
    let state_dir = tf.home.all_bytes();
    assert!(
        !contains(&state_dir, &secret),
        "canary in the state directory (audit log, artifacts, logs)"
    );
}

#[tokio::test]
async fn a_hostile_configuration_cannot_leave_the_root() {
    let tf = Tf::new(false);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let outside = tf.outside.path();
    let secret = canary("outside-file");
    std::fs::write(outside.join("secret.txt"), &secret).unwrap();
    let marker = outside.join("marker");
    // Run at apply by local-exec: read outside, write outside, connect to loopback. Each
    // outcome lands in a file inside the root, where the test reads it.
    let script = format!(
        "echo ran > ran.txt; \
         cat {o}/secret.txt > got.txt 2> read-err.txt; \
         echo pwned > {m} 2> write-err.txt; \
         (exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected > tcp.txt) 2> tcp-err.txt; \
         true",
        o = outside.display(),
        m = marker.display(),
    );
    tf.write(
        "main.tf",
        &format!(
            "resource \"terraform_data\" \"evil\" {{\n  provisioner \"local-exec\" {{\n    interpreter = [\"/bin/bash\", \"-c\"]\n    command = {}\n  }}\n}}\n",
            serde_json::to_string(&script).unwrap()
        ),
    );
    let mcp = tf.home.mcp().await;
    let out = ok(&mcp, "tf_plan", json!({})).await;
    let sha = text_of(&out["tf_plan"]["plan_sha256"]).to_string();
    let out = ok(&mcp, "tf_apply", json!({"plan_sha256": sha, "apply": true})).await;
    let read = |f: &str| std::fs::read_to_string(tf.stack().join(f)).unwrap_or_default();
    assert_eq!(read("ran.txt").trim(), "ran", "the provisioner ran: {out}");
    assert!(!read("got.txt").contains(&secret), "read outside the root");
    assert!(
        read("read-err.txt").contains("Permission denied"),
        "{}",
        read("read-err.txt")
    );
    assert!(!marker.exists(), "wrote outside the root");
    assert!(!tf.stack().join("tcp.txt").exists(), "connected over TCP");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the listener was reached"
    );
    assert!(!out.to_string().contains(&secret));
}

#[tokio::test]
async fn a_provider_the_workspace_ships_runs_confined_too() {
    // A "provider" in the implied local mirror `terraform.d/plugins` of the working directory:
    // terraform installs and starts it itself. It is a script that tries to leave the root.
    let tf = Tf::new(false);
    let outside = tf.outside.path();
    let secret = canary("outside-file");
    std::fs::write(outside.join("secret.txt"), &secret).unwrap();
    let marker = outside.join("provider-marker");
    let stack = tf.stack();
    let dir = stack.join("terraform.d/plugins/example.com/evil/evil/1.0.0/linux_amd64");
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("terraform-provider-evil_v1.0.0");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/bash
echo ran > {s}/provider-ran.txt
cat {o}/secret.txt > {s}/provider-got.txt 2>&1
echo pwned > {m}
exit 1
",
            s = stack.display(),
            o = outside.display(),
            m = marker.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    tf.write(
        "main.tf",
        "terraform {\n  required_providers {\n    evil = {\n      source  = \"example.com/evil/evil\"\n      version = \"1.0.0\"\n    }\n  }\n}\nprovider \"evil\" {}\n",
    );
    let mcp = tf.home.mcp().await;
    let out = fails(&mcp, "tf_plan", json!({})).await;
    let read = |f: &str| std::fs::read_to_string(stack.join(f)).unwrap_or_default();
    assert_eq!(
        read("provider-ran.txt").trim(),
        "ran",
        "terraform started it: {out}"
    );
    let got = read("provider-got.txt");
    assert!(
        !got.contains(&secret) && got.contains("Permission denied"),
        "{got}"
    );
    assert!(!marker.exists(), "the provider wrote outside the root");
    assert!(!out.to_string().contains(&secret));
}

#[tokio::test]
async fn a_plugin_running_terraform_apply_itself_is_refused_by_the_host() {
    // execprobe forwards any exec request and cannot ask the guard: the host alone decides.
    let home = Home::new();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("main.tf"), CONFIG).unwrap();
    home.policy(&format!(
        r#"
[roots]
work = {{ path = "{root}", read_only = false }}
[programs]
terraform = "{tf}"
[plugin.execprobe]
[plugin.execprobe.artifacts]
[plugin.execprobe.exec]
programs = ["terraform"]
roots = ["work"]
env = ["TF_*"]
read_only = false
"#,
        root = root.path().display(),
        tf = terraform().display(),
    ))
    .install_plugin(
        "execprobe",
        &test_plugin("execprobe"),
        include_str!("../plugins/execprobe/plugin.toml"),
    );
    let mcp = home.mcp().await;
    let run = |args: Value, env: Value| json!({"program": "terraform", "args": args, "root": "work", "env": env});
    let (err, out) = mcp
        .call("execprobe", run(json!(["init", "-input=false"]), json!([])))
        .await;
    assert!(!err && out["exit_code"] == 0, "init is no write: {out}");
    for (args, env, needle) in [
        (
            json!(["apply", "-auto-approve", "-input=false"]),
            json!([]),
            "holds no approval",
        ),
        (
            json!(["destroy", "-auto-approve"]),
            json!([]),
            "holds no approval",
        ),
        (json!(["-chdir=/tmp", "plan"]), json!([]), "-chdir"),
        (
            json!(["init", "-plugin-dir=/tmp"]),
            json!([]),
            "-plugin-dir",
        ),
        (
            json!(["plan"]),
            json!([["TF_CLI_CONFIG_FILE", "/tmp/x.tfrc"]]),
            "TF_CLI_CONFIG_FILE",
        ),
        (
            json!(["plan"]),
            json!([["TF_CLI_ARGS", "-chdir=/"]]),
            "TF_CLI_ARGS",
        ),
    ] {
        let (err, out) = mcp.call("execprobe", run(args.clone(), env)).await;
        assert!(err, "{args}: {out}");
        assert_eq!(out["error"]["kind"], "denied", "{args}: {out}");
        assert!(message(&out).contains(needle), "{args}: {out}");
    }
    assert!(
        !root.path().join("terraform.tfstate").exists(),
        "nothing was applied"
    );
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let tf = Tf::new(false);
    let mcp = tf.home.mcp().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"action": "tf_plan", "path": "stack"}), "root"),
        (json!({"action": "tf_plan", "root": "infra"}), "path"),
        (args("tf_plan", json!({"path": "../elsewhere"})), "path"),
        (args("tf_plan", json!({"path": "/etc"})), "path"),
        (args("tf_plan", json!({"path": "missing"})), "path"),
        (args("tf_plan", json!({"root": "nope"})), "root"),
        (
            args("tf_plan", json!({"var_files": ["../../x.tfvars"]})),
            "var_files",
        ),
        (args("tf_plan", json!({"targets": ["-destroy"]})), "targets"),
        (args("tf_plan", json!({"vars": {"a-b": "x"}})), "vars"),
        (args("tf_apply", json!({})), "plan_sha256"),
        (
            args("tf_apply", json!({"plan_sha256": "abc"})),
            "plan_sha256",
        ),
        (
            args(
                "tf_apply",
                json!({"plan_sha256": "0".repeat(64), "apply": true}),
            ),
            "plan_sha256",
        ),
    ];
    for (a, field) in cases {
        let (err, out) = mcp.call("gitops", a.clone()).await;
        assert!(err, "{a}: {out}");
        let named = out["error"]["field"] == field || message(&out).contains(field);
        assert!(named, "{a} should name `{field}`: {out}");
    }
}

#[tokio::test]
async fn the_terraform_runbooks_plan_then_apply_exactly_that_plan() {
    let tf = Tf::new(false);
    let mcp = tf.home.mcp().await;
    let run = |name: &str, inputs: Value| json!({"action": "run", "name": name, "inputs": inputs});
    let (err, out) = mcp
        .call(
            "runbook",
            run(
                "terraform.plan",
                json!({"root": "infra", "path": "stack", "vars": {"size": "2"}}),
            ),
        )
        .await;
    let out = tf.home.whole(out);
    assert!(!err, "{out}");
    let plan = &out["steps"][0]["output"]["tf_plan"];
    let sha = text_of(&plan["plan_sha256"]).to_string();
    assert_eq!(plan["summary"]["counts"]["add"], 2, "{out}");
    // Without apply from the run's inputs, the step writes nothing.
    let (err, out) = mcp
        .call(
            "runbook",
            run(
                "terraform.apply",
                json!({"root": "infra", "path": "stack", "plan_sha256": sha}),
            ),
        )
        .await;
    assert!(!err, "{out}");
    assert!(tf.state().is_empty(), "no apply without apply: true");
    let (err, out) = mcp
        .call(
            "runbook",
            run(
                "terraform.apply",
                json!({"root": "infra", "path": "stack", "plan_sha256": sha, "apply": true}),
            ),
        )
        .await;
    let out = tf.home.whole(out);
    assert!(!err, "{out}");
    assert_eq!(tf.state(), ["terraform_data.a", "terraform_data.s"]);
    assert_eq!(tf.input("a"), "a-2");
}

#[tokio::test]
async fn intent_dry_run_on_a_terraform_directory_proposes_terraform_plan_and_executes_it() {
    let tf = Tf::new(false);
    let mcp = tf.home.mcp().await;
    let (err, out) = mcp
        .call("intent", json!({"action": "dry_run", "root": "infra"}))
        .await;
    assert!(!err, "{out}");
    let plan = out["proposed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "terraform.plan")
        .unwrap_or_else(|| panic!("terraform.plan proposed: {out}"))
        .clone();
    assert_eq!(
        plan["inputs"]["path"], "stack",
        "the working directory found: {out}"
    );
    assert!(
        out["proposed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["type"] != "gitops.plan")
    );
    let (err, out) = mcp
        .call(
            "intent",
            json!({"action": "execute", "type": "terraform.plan", "root": "infra",
                   "inputs": {"vars": {"size": "1"}}}),
        )
        .await;
    let out = tf.home.whole(out);
    assert!(!err, "{out}");
    let p = &out["run"]["steps"][0]["output"]["tf_plan"];
    assert_eq!(text_of(&p["plan_sha256"]).len(), 64, "{out}");
    assert!(tf.state().is_empty());
    // A write intent without apply: true answers with plans and says so.
    let sha = text_of(&p["plan_sha256"]).to_string();
    let (err, out) = mcp
        .call(
            "intent",
            json!({"action": "execute", "type": "terraform.apply", "root": "infra",
                   "inputs": {"plan_sha256": sha}}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(
        out["notes"][0].as_str().unwrap().contains("apply: true"),
        "{out}"
    );
    assert!(tf.state().is_empty());
}
