//! Connection pools per profile, and the lease that returns a connection clean or not at all.

use std::collections::HashMap;
use std::sync::Mutex;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

use super::{CONNECT_TIMEOUT, POOL_SIZE, RESET_SESSION};
use crate::caps::infra::host::types::CapError;
use crate::profiles::PostgresProfile;

/// A pooled connection lent to one call. Dropped without [`Lease::release`] (the call was
/// abandoned or failed at the connection), it is closed rather than returned in an unknown state.
pub(super) struct Lease(pub(super) Option<Object>);

impl Lease {
    /// Resets the session, then returns the connection to the pool; closes it if the reset fails.
    pub(super) async fn release(mut self) {
        let Some(client) = self.0.take() else { return };
        match tokio::time::timeout(CONNECT_TIMEOUT, client.batch_execute(RESET_SESSION)).await {
            Ok(Ok(())) => drop(client),
            Ok(Err(e)) => {
                tracing::debug!("postgres: closing a connection whose reset failed: {e}");
                drop(Object::take(client));
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// Postgres connection pools: per profile, one for read-write calls and one for read-only calls.
#[derive(Default)]
pub struct Pools {
    by_profile: Mutex<HashMap<(String, bool), (String, Pool)>>,
}

impl Pools {
    /// The pool of profile `name` for read-only or read-write calls, made on first use or when
    /// the profile's settings changed. A read-only pool's sessions start with
    /// `default_transaction_read_only = on`, which `RESET ALL` returns to: should a statement
    /// ever leave the host's read-only transaction, what it runs next is still read-only.
    pub(super) fn get(
        &self,
        name: &str,
        p: &PostgresProfile,
        password: Option<&str>,
        read_only: bool,
    ) -> Result<Pool, CapError> {
        let mut hash = Sha256::new();
        for part in [&p.host, &p.port.to_string(), &p.user, &p.database] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(password.unwrap_or("").as_bytes());
        let key = hex::encode(hash.finalize());
        let mut map = self.by_profile.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (name.to_string(), read_only);
        if let Some((k, pool)) = map.get(&slot)
            && *k == key
        {
            return Ok(pool.clone());
        }
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&p.host)
            .port(p.port)
            .user(&p.user)
            .dbname(&p.database)
            .application_name("infra")
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true);
        if read_only {
            cfg.options("-c default_transaction_read_only=on");
        }
        if let Some(pw) = password {
            cfg.password(pw);
        }
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| CapError::Failed(format!("cannot build the pool of '{name}': {e}")))?;
        if let Some((_, old)) = map.insert(slot, (key, pool.clone())) {
            old.close();
        }
        Ok(pool)
    }

    /// `(connections open, connections idle)` of a profile's pools, when it has any.
    pub fn status(&self, name: &str) -> Option<(usize, usize)> {
        let map = self.by_profile.lock().unwrap_or_else(|e| e.into_inner());
        [false, true]
            .iter()
            .filter_map(|ro| map.get(&(name.to_string(), *ro)))
            .map(|(_, pool)| {
                let s = pool.status();
                (s.size, s.available)
            })
            .reduce(|a, b| (a.0 + b.0, a.1 + b.1))
    }
}
