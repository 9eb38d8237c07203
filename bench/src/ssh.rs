//! `ssh exec true` through infra vs in-process russh on one session and the OpenSSH client.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use infra_tests::Home;
use infra_tests::sshd::{QUIET_SHELL, Sshd};
use russh::ChannelMsg;
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use serde_json::json;

use crate::harness::{Scale, call, run_quiet, secs, serve};
use crate::table::{Row, m, median};

/// Accepts any host key: the baseline connects to the sshd this process just started.
struct Trusting;

impl client::Handler for Trusting {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn russh_session(sshd: &Sshd) -> Result<client::Handle<Trusting>> {
    let config = Arc::new(client::Config {
        nodelay: true,
        ..Default::default()
    });
    let mut handle = client::connect(config, ("127.0.0.1", sshd.port), Trusting).await?;
    let key = russh::keys::load_secret_key(&sshd.key, None)?;
    let auth = handle
        .authenticate_publickey(
            sshd.user.clone(),
            PrivateKeyWithHashAlg::new(Arc::new(key), None),
        )
        .await?;
    if !auth.success() {
        bail!("russh: public key authentication failed");
    }
    Ok(handle)
}

/// One channel, `exec true`, until the exit status and close.
async fn russh_exec(handle: &client::Handle<Trusting>, command: &str) -> Result<()> {
    let mut ch = handle.channel_open_session().await?;
    ch.exec(true, command).await?;
    let mut status = None;
    while let Some(msg) = ch.wait().await {
        if let ChannelMsg::ExitStatus { exit_status } = msg {
            status = Some(exit_status);
        }
    }
    if status != Some(0) {
        bail!("russh exec {command}: exit status {status:?}");
    }
    Ok(())
}

/// An OpenSSH client (`ssh` or `sftp`) to `sshd`: key auth, the host key pinned, no config
/// file — the options every baseline shares.
pub fn openssh_client(program: &str, sshd: &Sshd, known_hosts: &std::path::Path) -> Command {
    let port_flag = if program == "sftp" { "-P" } else { "-p" };
    let mut c = Command::new(program);
    c.arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(&sshd.key)
        .args([port_flag, &sshd.port.to_string()])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
        ]);
    c
}

fn openssh(sshd: &Sshd, known_hosts: &std::path::Path) -> Command {
    let mut c = openssh_client("ssh", sshd, known_hosts);
    c.arg(format!("{}@127.0.0.1", sshd.user)).arg("true");
    c
}

/// The two rows: infra vs russh (≥ 0.9×) and infra vs the OpenSSH client (≥ 5×).
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(100, 5);
    let sshd = Sshd::start_with(QUIET_SHELL);
    let home = Home::new();
    std::fs::write(
        home.path().join("targets.json"),
        json!({"plain": sshd.target(false, None)}).to_string(),
    )?;
    let host_pub = std::fs::read_to_string(sshd.dir().join("host_ed25519.pub"))?;
    let known_hosts = sshd.dir().join("bench_known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {host_pub}", sshd.port),
    )?;

    let server = serve(&home, &[]).await?;
    let args = json!({"action": "exec", "target": "plain", "command": "true"});
    let check = |out: &serde_json::Value| -> Result<()> {
        if out.pointer("/command/exit_code") != Some(&json!(0)) {
            bail!("ssh exec true: {out}");
        }
        Ok(())
    };
    // The first call connects; later calls reuse the pooled session, as the baseline does.
    for _ in 0..3 {
        check(&call(&server.mcp, "ssh", &args).await?)?;
    }
    let handle = russh_session(&sshd).await?;
    russh_exec(&handle, "true").await?;
    run_quiet(&mut openssh(&sshd, &known_hosts)).context("the OpenSSH client baseline")?;

    let (mut infra, mut native, mut client) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[ssh] rep {}/{}: {n} calls each", rep + 1, scale.reps);
        let t = Instant::now();
        for _ in 0..n {
            check(&call(&server.mcp, "ssh", &args).await?)?;
        }
        infra.push(n as f64 / secs(t));
        let t = Instant::now();
        for _ in 0..n {
            russh_exec(&handle, "true").await?;
        }
        native.push(n as f64 / secs(t));
        let t = Instant::now();
        for _ in 0..n {
            run_quiet(&mut openssh(&sshd, &known_hosts))?;
        }
        client.push(n as f64 / secs(t));
    }
    server.mcp.close().await;
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    let (infra, native, client) = (median(&infra), median(&native), median(&client));
    let note = format!("{n} sequential calls × {} reps", scale.reps);
    Ok(vec![
        Row {
            name: format!("ssh exec `true` ×{n} (MCP → ssh plugin, pooled session)"),
            infra: m(infra, "calls/s"),
            baseline: Some((
                "russh in-process, one session, a channel per exec".into(),
                m(native, "calls/s"),
            )),
            target: Some(("≥ 0.9×".into(), infra / native >= 0.9)),
            note: note.clone(),
        },
        Row {
            name: format!("ssh exec `true` ×{n}"),
            infra: m(infra, "calls/s"),
            baseline: Some((
                "OpenSSH `ssh` client, one process per call".into(),
                m(client, "calls/s"),
            )),
            target: Some(("≥ 5×".into(), infra / client >= 5.0)),
            note,
        },
    ])
}
