//! An rmcp client that answers elicitation requests as a scripted user would — accept with a
//! given text, decline, cancel — and records every question it was asked; or one that declares
//! no elicitation support at all.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    Implementation, ProtocolVersion,
};
use rmcp::service::RequestContext;
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};

use crate::{Home, Mcp};

/// What the scripted user does when asked.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Accepts, typing this into the one field.
    Accept(String),
    /// Declines.
    Decline,
    /// Dismisses the question.
    Cancel,
}

/// One question the server asked: its message and requested schema.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The text shown to the user.
    pub message: String,
    /// The requested schema, as JSON.
    pub schema: Value,
}

/// A client whose user answers every elicitation with `reply`; `None` declares no elicitation
/// support (the server must then not ask).
#[derive(Clone)]
pub struct User {
    reply: Option<Reply>,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl ClientHandler for User {
    fn get_info(&self) -> ClientConfig {
        let caps = match self.reply {
            Some(_) => ClientCapabilities::builder().enable_elicitation().build(),
            None => ClientCapabilities::default(),
        };
        ClientConfig::new(caps, Implementation::new("infra-tests-user", "0.0.0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let (message, schema) = match request {
            ElicitRequestParams::FormElicitationParams {
                message,
                requested_schema,
                ..
            } => (
                message,
                serde_json::to_value(requested_schema).unwrap_or_default(),
            ),
            other => (format!("{other:?}"), Value::Null),
        };
        self.asked.lock().unwrap().push(Asked { message, schema });
        Ok(match &self.reply {
            Some(Reply::Accept(text)) => {
                let mut r = ElicitResult::new(ElicitationAction::Accept);
                r.content = Some(json!({"confirm": text}));
                r
            }
            Some(Reply::Decline) => ElicitResult::new(ElicitationAction::Decline),
            Some(Reply::Cancel) | None => ElicitResult::new(ElicitationAction::Cancel),
        })
    }
}

/// Starts `infra serve` on `home` with a user answering `reply` (`None`: a client without
/// elicitation support); returns the session and the questions asked.
pub async fn connect(home: &Home, reply: Option<Reply>) -> (Mcp<User>, Arc<Mutex<Vec<Asked>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let user = User {
        reply,
        asked: asked.clone(),
    };
    (home.mcp_as(user, |_| {}).await, asked)
}
