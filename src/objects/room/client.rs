//! The only way anything else reaches a `Room` object: hand it a verified socket, or
//! call it ([`RoomCall`]).

use worker::wasm_bindgen::JsValue;
use worker::Env;

use crate::protocol::frames::Member;
use crate::protocol::internal::{
    Closed, Handoff, HistoryPage, Published, Push, RoomCall, RoomMembers, RoomStats, CONNECT_PATH,
    HANDOFF_HEADER,
};
use crate::runtime::env::ROOMS_BINDING;
use crate::runtime::error::ApiError;
use crate::runtime::object::{call, forward, stub};

/// Hands the socket the gate verified to its room. Not `async`: the answer is the
/// promise of the room's response (its 101 with the socket, or the room's own refusal),
/// passed on as it comes, with no copy into a `worker::Response` and back.
pub fn connect(env: &Env, handoff: &Handoff) -> Result<JsValue, ApiError> {
    let room = stub(env, ROOMS_BINDING, &handoff.room)?;
    let encoded = handoff.encode();
    forward(
        room,
        CONNECT_PATH,
        &[("upgrade", "websocket"), (HANDOFF_HEADER, &encoded)],
    )
}

/// Closes `user_id`'s sockets in `room`; returns how many.
pub async fn kick(env: &Env, room: &str, user_id: &str) -> Result<usize, ApiError> {
    let call_kick = RoomCall::Kick {
        user_id: user_id.to_owned(),
    };
    let closed: Closed = call(&stub(env, ROOMS_BINDING, room)?, &call_kick).await?;
    Ok(closed.closed)
}

/// Delivers `push` to `room`; returns how many sockets it closed there.
pub async fn push(env: &Env, room: &str, push: &Push) -> Result<usize, ApiError> {
    let closed: Closed = call(&stub(env, ROOMS_BINDING, room)?, &push.to_room(room)).await?;
    Ok(closed.closed)
}

/// The figures of `room`.
pub async fn stats(env: &Env, room: &str) -> Result<RoomStats, ApiError> {
    call(&stub(env, ROOMS_BINDING, room)?, &RoomCall::Stats).await
}

/// Publishes from the server API into `room` ([`RoomCall::Publish`]).
pub async fn publish(
    env: &Env,
    room: &str,
    from: Member,
    data: String,
    idempotency_key: Option<String>,
) -> Result<Published, ApiError> {
    let publish = RoomCall::Publish {
        room: room.to_owned(),
        from,
        data,
        idempotency_key,
    };
    call(&stub(env, ROOMS_BINDING, room)?, &publish).await
}

/// Who is in `room`, with their socket counts.
pub async fn members(env: &Env, room: &str) -> Result<RoomMembers, ApiError> {
    call(&stub(env, ROOMS_BINDING, room)?, &RoomCall::Members).await
}

/// A page of `room`'s kept messages.
pub async fn history(
    env: &Env,
    room: &str,
    before: Option<u64>,
    limit: Option<u64>,
) -> Result<HistoryPage, ApiError> {
    call(
        &stub(env, ROOMS_BINDING, room)?,
        &RoomCall::History { before, limit },
    )
    .await
}
