//! The only way anything else reaches the `TicketBox` objects: the deployment's ticket
//! key, keeping a ticket's record, and taking it back once.

use std::cell::RefCell;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use worker::Env;

use crate::auth::ticket::{ticket_hash, TicketKey, TicketRecord};
use crate::protocol::internal::{TicketCall, TicketKeyBytes, TicketTaken};
use crate::runtime::env::TICKETS_BINDING;
use crate::runtime::error::ApiError;
use crate::runtime::object::{call, stub};

/// The box that holds the ticket key (it holds no tickets: shards are `tickets-<n>`).
const KEY_BOX: &str = "tickets-key";

thread_local! {
    static KEY: RefCell<Option<Rc<TicketKey>>> = const { RefCell::new(None) };
}

/// The deployment's ticket key: asked of its box once per isolate, then kept (it never
/// changes).
pub async fn key(env: &Env) -> Result<Rc<TicketKey>, ApiError> {
    if let Some(key) = KEY.with_borrow(|k| k.clone()) {
        return Ok(key);
    }
    let answer: TicketKeyBytes =
        call(&stub(env, TICKETS_BINDING, KEY_BOX)?, &TicketCall::Key).await?;
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(answer.key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::Internal("ticket key is not 32 bytes".into()))?;
    let key = Rc::new(TicketKey::new(bytes));
    KEY.set(Some(key.clone()));
    Ok(key)
}

/// Keeps `record` for `ticket` (by its hash) until the record expires.
pub async fn put(
    env: &Env,
    key: &TicketKey,
    ticket: &str,
    record: &TicketRecord,
) -> Result<(), ApiError> {
    let text = serde_json::to_string(record).map_err(|e| ApiError::Internal(e.to_string()))?;
    let put = TicketCall::Put {
        hash: ticket_hash(ticket),
        expires_at: record.expires_at,
        record: RawValue::from_string(text).map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let _: IgnoredAny = call(&stub(env, TICKETS_BINDING, &key.shard(ticket))?, &put).await?;
    Ok(())
}

/// Takes the record of `ticket`, which only the first taker gets; `None` when it is
/// unknown, used or expired.
pub async fn take(
    env: &Env,
    key: &TicketKey,
    ticket: &str,
) -> Result<Option<TicketRecord>, ApiError> {
    let take = TicketCall::Take {
        hash: ticket_hash(ticket),
    };
    let box_of = stub(env, TICKETS_BINDING, &key.shard(ticket))?;
    let taken: TicketTaken = call(&box_of, &take).await?;
    taken
        .record
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|e| ApiError::Internal(format!("ticket record: {e}")))
}
