//! The `TicketBox` Durable Object: single-use WebSocket tickets, kept by their hash.
//!
//! Tickets must be single-use even when two upgrades race to redeem the same one, so they
//! live in Durable Objects (strongly consistent, one event at a time), not in KV.
//! Taking is one `DELETE ... RETURNING` statement: whoever runs it first gets the record,
//! everyone after gets nothing. Tickets are spread over 64 objects by a keyed hash
//! (`auth::ticket::TicketKey::shard`); each object prunes expired rows as it goes. The
//! box reads nothing of a record but its expiry ([`TicketCall`]). One more box,
//! `tickets-key`, keeps the deployment's ticket key.
//!
//! [`client`] is the only way anything else calls this object.

pub mod client;

use serde::Deserialize;
use serde_json::value::RawValue;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::auth::secret::random_bytes;
use crate::protocol::internal::{TicketCall, TicketKeyBytes, TicketTaken};
use crate::runtime::env::now_secs;
use crate::runtime::error::ApiError;
use crate::runtime::http::json;
use crate::runtime::object::read_call;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tickets (
    hash TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at INTEGER NOT NULL
)";
/// The key box's one row: the deployment's ticket key (`auth::ticket::TicketKey`).
const KEY_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ticket_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key TEXT NOT NULL
)";

#[durable_object]
pub struct TicketBox {
    state: State,
}

impl DurableObject for TicketBox {
    fn new(state: State, _env: Env) -> Self {
        if let Err(e) = state.storage().sql().exec(SCHEMA, None) {
            worker::console_error!("ticket schema: {e}");
        }
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let call = read_call::<TicketCall>(&mut req).await;
        Ok(call
            .and_then(|call| self.on_call(call))
            .unwrap_or_else(ApiError::into_response))
    }
}

impl TicketBox {
    /// One call, synchronous from the prune to the answer.
    fn on_call(&self, call: TicketCall) -> std::result::Result<Response, ApiError> {
        let sql = self.state.storage().sql();
        let now = now_secs() as i64;
        sql.exec(
            "DELETE FROM tickets WHERE expires_at <= ?1",
            vec![now.into()],
        )?;
        match call {
            TicketCall::Put {
                hash,
                expires_at,
                record,
            } => {
                sql.exec(
                    "INSERT INTO tickets (hash, record, expires_at) VALUES (?1, ?2, ?3)",
                    vec![hash.into(), record.get().into(), (expires_at as i64).into()],
                )?;
                json(200, &serde_json::json!({}))
            }
            TicketCall::Key => {
                #[derive(Deserialize)]
                struct Row {
                    key: String,
                }
                sql.exec(KEY_SCHEMA, None)?;
                // Made once, by whichever first asks: the box runs one event at a time.
                sql.exec(
                    "INSERT OR IGNORE INTO ticket_key (id, key) VALUES (1, ?1)",
                    vec![URL_SAFE_NO_PAD.encode(random_bytes::<32>()).into()],
                )?;
                let row: Row = sql
                    .exec("SELECT key FROM ticket_key WHERE id = 1", None)?
                    .one()?;
                json(200, &TicketKeyBytes { key: row.key })
            }
            TicketCall::Take { hash } => {
                #[derive(Deserialize)]
                struct Row {
                    record: String,
                }
                let rows: Vec<Row> = sql
                    .exec(
                        "DELETE FROM tickets WHERE hash = ?1 RETURNING record",
                        vec![hash.into()],
                    )?
                    .to_array()?;
                let record = rows
                    .into_iter()
                    .next()
                    .map(|row| RawValue::from_string(row.record))
                    .transpose()
                    .map_err(|e| ApiError::Internal(format!("stored ticket: {e}")))?;
                json(200, &TicketTaken { record })
            }
        }
    }
}
