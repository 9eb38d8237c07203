//! Credentials of a profile, put where a program finds them and the plugin does not: an
//! `ssh-key` profile becomes a key file (decrypted, 0600) and a pinned known_hosts in the run's
//! home behind `GIT_SSH_COMMAND`; an http `bearer`/`basic` profile becomes an askpass program
//! (`GIT_ASKPASS`) that prints the user and the secret from a 0600 file beside it. Every value is
//! registered with the redactor first, so output that echoes one is scrubbed.

use super::super::CallCtx;
use super::super::infra::host::types::CapError;
use super::super::ssh::sh_quote;
use super::cap_error;
use crate::confine::env::Env;
use crate::confine::home::RunHome;
use crate::profiles::{HttpAuth, Profile, SecretRef};

/// The user name sent with a bearer token over HTTPS (accepted by GitHub; most forges accept
/// any user with a token).
const TOKEN_USER: &str = "x-access-token";

/// Puts profile `name`'s credentials in `home` and `env`. The grant was checked by the caller.
pub fn inject(call: &CallCtx, name: &str, home: &RunHome, env: &mut Env) -> Result<(), CapError> {
    let redactor = &call.shared.redactor;
    let resolve = |r: &SecretRef| {
        r.resolve()
            .map_err(|e| CapError::Failed(format!("profile '{name}': {e:#}")))
    };
    match call.shared.profiles.get(name) {
        None => Err(CapError::NotFound(format!(
            "profile: '{name}' is not in profiles.json; add it (type ssh-key, or http with bearer/basic auth) to profiles.json in the state directory"
        ))),
        Some(Profile::SshKey(p)) => {
            let text = resolve(&p.key)?;
            redactor.add_private_key(&text);
            let key = match &p.passphrase {
                None => text,
                Some(r) => {
                    let pass = resolve(r)?;
                    redactor.add(&pass);
                    // ssh runs in batch mode and cannot ask for the passphrase: the key is
                    // decrypted here and written only into the run's own home.
                    let k = russh::keys::decode_secret_key(&text, Some(&pass)).map_err(|e| {
                        CapError::Failed(format!(
                            "profile '{name}': cannot decrypt the key with its passphrase ({e}); check `passphrase`"
                        ))
                    })?;
                    let plain = k
                        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                        .map_err(|e| CapError::Failed(format!("profile '{name}': {e}")))?;
                    redactor.add_private_key(&plain);
                    plain.to_string()
                }
            };
            let mut key = key;
            if !key.ends_with('\n') {
                key.push('\n');
            }
            let known = resolve(&p.known_hosts)?;
            let key_file = home
                .write("id_infra", key.as_bytes(), 0o600)
                .map_err(cap_error)?;
            let kh = home
                .write("known_hosts", format!("{known}\n").as_bytes(), 0o600)
                .map_err(cap_error)?;
            env.set(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes",
                    sh_quote(&key_file.to_string_lossy()),
                    sh_quote(&kh.to_string_lossy())
                ),
            );
            Ok(())
        }
        Some(Profile::Http(h)) => {
            let (user, secret) = match &h.auth {
                Some(HttpAuth::Bearer { token }) => (TOKEN_USER.to_string(), resolve(token)?),
                Some(HttpAuth::Basic { user, password }) => (user.clone(), resolve(password)?),
                _ => {
                    return Err(CapError::Invalid(format!(
                        "profile: '{name}' has no bearer or basic auth, which is what a program's askpass can give; use such a profile or an ssh-key one"
                    )));
                }
            };
            redactor.add(&secret);
            let secret_file = home
                .write("askpass-secret", secret.as_bytes(), 0o600)
                .map_err(cap_error)?;
            let script = format!(
                "#!/bin/sh\ncase \"$1\" in\n  Username*) printf '%s\\n' {} ;;\n  *) cat {} ;;\nesac\n",
                sh_quote(&user),
                sh_quote(&secret_file.to_string_lossy())
            );
            let askpass = home
                .write("askpass", script.as_bytes(), 0o700)
                .map_err(cap_error)?;
            env.set("GIT_ASKPASS", askpass);
            Ok(())
        }
        Some(Profile::Postgres(_)) => Err(CapError::Invalid(format!(
            "profile: '{name}' is a postgres profile; programs take ssh-key profiles or http ones with bearer/basic auth"
        ))),
        Some(Profile::Kubernetes(_)) => Err(CapError::Invalid(format!(
            "profile: '{name}' is a kubernetes profile, which the host uses for its own http requests (the k8s tool) and never hands to a program; programs take ssh-key profiles or http ones with bearer/basic auth"
        ))),
    }
}
