//! The only way anything else starts a push: [`reach`] runs its first node in the calling
//! request and hands parts to `Fanout` objects as needed.

use worker::Env;

use super::node;
use crate::protocol::internal::{Push, Reach};
use crate::room::registration::BUCKETS;

/// Delivers `push` to every room in the registry, at most `page` calls per request.
pub async fn reach(env: &Env, push: &Push, page: u32) -> Reach {
    node::push(env, push, 0, BUCKETS, page).await
}
