//! The only way anything else reaches the `TicketBox` objects: keep a ticket's record,
//! or take it back once.

use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use worker::Env;

use crate::auth::ticket::{shard, ticket_hash, TicketRecord};
use crate::protocol::internal::{TicketCall, TicketTaken};
use crate::runtime::env::TICKETS_BINDING;
use crate::runtime::error::ApiError;
use crate::runtime::object::{call, stub};

/// Keeps `record` for `ticket` (by its hash) until the record expires.
pub async fn put(env: &Env, ticket: &str, record: &TicketRecord) -> Result<(), ApiError> {
    let text = serde_json::to_string(record).map_err(|e| ApiError::Internal(e.to_string()))?;
    let put = TicketCall::Put {
        hash: ticket_hash(ticket),
        expires_at: record.expires_at,
        record: RawValue::from_string(text).map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let _: IgnoredAny = call(&stub(env, TICKETS_BINDING, &shard(ticket))?, &put).await?;
    Ok(())
}

/// Takes the record of `ticket`, which only the first taker gets; `None` when it is
/// unknown, used or expired.
pub async fn take(env: &Env, ticket: &str) -> Result<Option<TicketRecord>, ApiError> {
    let take = TicketCall::Take {
        hash: ticket_hash(ticket),
    };
    let taken: TicketTaken = call(&stub(env, TICKETS_BINDING, &shard(ticket))?, &take).await?;
    taken
        .record
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|e| ApiError::Internal(format!("ticket record: {e}")))
}
