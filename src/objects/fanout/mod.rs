//! The `Fanout` Durable Object: one part of a push to every room with live sockets.
//!
//! A push (a revocation) must reach every registered room, and one request can make only
//! so many subrequests. So the registry is split by its rows' random buckets
//! (`room::registration::BUCKETS`): a part with at most `REVOKE_PAGE_SIZE` rooms is pushed
//! to directly, a bigger one is cut into that many ranges, each handed to a `Fanout`
//! object of its own, which does the same with its range. Every request makes at most
//! `REVOKE_PAGE_SIZE` calls plus two D1 reads, the depth grows with the logarithm of the
//! number of rooms, and the order of room names plays no part. The objects keep nothing.
//!
//! [`client`] is the only way anything else calls this object.

pub mod client;
mod node;

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::protocol::internal::FanoutCall;
use crate::runtime::error::ApiError;
use crate::runtime::http::json;
use crate::runtime::object::read_call;

#[durable_object]
pub struct Fanout {
    env: Env,
}

impl DurableObject for Fanout {
    fn new(_state: State, env: Env) -> Self {
        Self { env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match read_call::<FanoutCall>(&mut req).await {
            Ok(call) => {
                let reach = node::push(&self.env, &call.push, call.lo, call.hi, call.page).await;
                json(200, &reach)
            }
            Err(e) => Err(e),
        };
        Ok(answer.unwrap_or_else(ApiError::into_response))
    }
}
