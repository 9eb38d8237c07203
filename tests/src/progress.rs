//! An rmcp client that records the progress notifications it receives, in either protocol era:
//! the `initialize` handshake (2025-11-25) or `server/discover` (2026-07-28).

use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext};
use rmcp::{ClientHandler, RoleClient};

use crate::{Home, Mcp};

/// A client that records progress notifications.
#[derive(Clone)]
pub struct Client {
    config: ClientConfig,
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

/// The protocol era to start in.
#[derive(Debug, Clone, Copy)]
pub enum Era {
    /// `initialize` (2025-11-25).
    Initialize,
    /// `server/discover` (2026-07-28).
    Discover,
}

/// Starts `infra serve` on `home` and connects; returns the session and what progress it saw.
pub async fn connect(
    home: &Home,
    era: Era,
) -> (Mcp<Client>, Arc<Mutex<Vec<ProgressNotificationParam>>>) {
    connect_with(home, era, |_| {}).await
}

/// [`connect`], with `tweak` applied to the server's command (environment, directory).
pub async fn connect_with(
    home: &Home,
    era: Era,
    tweak: impl FnOnce(&mut tokio::process::Command),
) -> (Mcp<Client>, Arc<Mutex<Vec<ProgressNotificationParam>>>) {
    let progress = Arc::new(Mutex::new(Vec::new()));
    let config = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("infra-tests", "0.0.0"),
    );
    let mcp = match era {
        Era::Initialize => {
            let client = Client {
                config: config.with_protocol_version(ProtocolVersion::V_2025_11_25),
                progress: progress.clone(),
            };
            home.mcp_as(client, tweak).await
        }
        Era::Discover => {
            let client = Client {
                config,
                progress: progress.clone(),
            };
            home.mcp_connect(tweak, |transport| {
                client.serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
            })
            .await
        }
    };
    (mcp, progress)
}
