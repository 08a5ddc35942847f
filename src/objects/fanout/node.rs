//! One node of a push: the rooms in a range of registry buckets, pushed to directly or
//! handed on in parts (see the module above).

use futures_util::future::join_all;
use worker::Env;

use crate::auth::secret::random_id;
use crate::objects::room::client as room;
use crate::protocol::internal::{FanoutCall, Push, Reach};
use crate::room::registration::{plan, Plan};
use crate::runtime::env::FANOUT_BINDING;
use crate::runtime::object::{call, stub};
use crate::store::rooms;

/// Delivers `push` to every registered room with a bucket in `lo..hi`, at most `page`
/// calls from this request. Never fails as a whole: what could not be reached is listed
/// in the answer.
pub(super) async fn push(env: &Env, push: &Push, lo: i64, hi: i64, page: u32) -> Reach {
    let total = match rooms::count_in(env, lo, hi).await {
        Ok(total) => total,
        Err(e) => return unreached(lo, hi, &e),
    };
    let parts = match plan(lo, hi, total, page) {
        Plan::Direct => return push_to_rooms(env, push, lo, hi).await,
        Plan::Parts(parts) => parts,
    };
    let handed = parts
        .into_iter()
        .map(|(a, b)| hand_on(env, push, a, b, page));
    let mut reach = Reach::default();
    for part in join_all(handed).await {
        reach.add(part);
    }
    reach
}

/// Calls every room in `lo..hi` at once.
async fn push_to_rooms(env: &Env, push: &Push, lo: i64, hi: i64) -> Reach {
    let names = match rooms::rooms_in(env, lo, hi).await {
        Ok(names) => names,
        Err(e) => return unreached(lo, hi, &e),
    };
    let calls = names.iter().map(|name| room::push(env, name, push));
    let mut reach = Reach::default();
    for (name, outcome) in names.iter().zip(join_all(calls).await) {
        match outcome {
            Ok(closed) => {
                reach.rooms += 1;
                reach.closed += closed;
            }
            Err(e) => reach.failed.push(format!("{name}: {e:?}")),
        }
    }
    reach
}

/// Hands `lo..hi` to a `Fanout` object of its own (a fresh request, with a fresh
/// subrequest budget).
async fn hand_on(env: &Env, push: &Push, lo: i64, hi: i64, page: u32) -> Reach {
    let part = FanoutCall {
        push: push.clone(),
        lo,
        hi,
        page,
    };
    let answer = match stub(env, FANOUT_BINDING, &random_id()) {
        Ok(node) => call(&node, &part).await,
        Err(e) => Err(e),
    };
    answer.unwrap_or_else(|e| unreached(lo, hi, &e))
}

fn unreached(lo: i64, hi: i64, why: &impl std::fmt::Debug) -> Reach {
    Reach {
        failed: vec![format!("rooms in buckets {lo}..{hi}: {why:?}")],
        ..Reach::default()
    }
}
