//! The `TicketBox` Durable Object: single-use WebSocket tickets, kept by their hash.
//!
//! Tickets must be single-use even when two upgrades race to redeem the same one, so they
//! live in Durable Objects (strongly consistent, one event at a time), not in KV.
//! Taking is one `DELETE ... RETURNING` statement: whoever runs it first gets the record,
//! everyone after gets nothing. Tickets are spread over 64 objects by their first
//! character (`auth::ticket::shard`); each object prunes expired rows as it goes. The
//! box reads nothing of a record but its expiry ([`TicketCall`]).
//!
//! [`client`] is the only way anything else calls this object.

pub mod client;

use serde::Deserialize;
use serde_json::value::RawValue;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::protocol::internal::{TicketCall, TicketTaken};
use crate::runtime::env::now_secs;
use crate::runtime::error::ApiError;
use crate::runtime::http::json;
use crate::runtime::object::read_call;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tickets (
    hash TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at INTEGER NOT NULL
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
