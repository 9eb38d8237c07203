//! `infra:host/secrets`: a secret's value, only with `INFRA_ALLOW_SECRET_EXPORT=1` and a grant
//! of its logical name, resolved through the policy's `[secrets]` map.

use super::StoreState;
use super::infra::host::secrets::Host;
use super::infra::host::types::CapError;

impl Host for StoreState {
    async fn get(&mut self, name: String) -> Result<String, CapError> {
        let call = &self.call;
        if !call.shared.flags.allow_secret_export {
            let reason = format!(
                "secrets: reading secret values is off; infra must run with INFRA_ALLOW_SECRET_EXPORT=1 \
                 and the policy must grant '{name}' under [plugin.{}.secrets] names — prefer a profile, \
                 which keeps the secret in the host",
                call.plugin
            );
            call.decide(
                "secrets",
                &name,
                crate::policy::Decision::Deny(reason.clone()),
            )
            .ok();
            return Err(CapError::Denied(reason));
        }
        call.decide(
            "secrets",
            &name,
            call.shared.policy.check_secret(&call.plugin, &name),
        )
        .map_err(CapError::Denied)?;
        // The guest names a logical secret; only the operator's [secrets] map turns it into a
        // file or variable, so no name a guest can choose walks to another file.
        let reference = call.shared.policy.secret_ref(&name).ok_or_else(|| {
            CapError::NotFound(format!(
                "secret '{name}' is granted but not defined: the operator maps it to a reference under [secrets] in {}",
                call.shared.policy.origin()
            ))
        })?;
        let value = reference
            .resolve()
            .map_err(|e| CapError::NotFound(format!("{e:#}")))?;
        // The value is now known: scrub it from every output, artifact and audit record.
        call.shared.redactor.add(&value);
        Ok(value)
    }
}
