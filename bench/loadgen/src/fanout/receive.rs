//! Each client's reader: it checks the order of what it receives and counts every
//! delivery into the current step's [`StepState`] (each message of a batch on its own).

use crate::scan::{Delivery, OrderCheck};
use crate::stats::{new_histogram, record_us};
use crate::wire::Wire;
use crate::ws::{now_ns, Ws};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::rc::Rc;
use tokio_tungstenite::tungstenite::Message;

/// Counters of one step, filled by the receivers.
pub(super) struct StepState {
    step_start_ns: u64,
    window_start_ns: u64,
    window_end_ns: u64,
    pub(super) hist: Histogram<u64>,
    /// Deliveries received inside the window (of messages of this step).
    pub(super) delivered_in_window: u64,
    /// Deliveries of messages sent inside the window, whenever received.
    pub(super) received_of_window: u64,
    /// Deliveries of messages from an earlier step.
    pub(super) stale: u64,
    pub(super) reorders: u64,
    pub(super) gaps: u64,
    pub(super) unparsed: u64,
    pub(super) disconnects: u64,
}

impl StepState {
    pub(super) fn new(step_start_ns: u64, window_start_ns: u64, window_end_ns: u64) -> StepState {
        StepState {
            step_start_ns,
            window_start_ns,
            window_end_ns,
            hist: new_histogram(),
            delivered_in_window: 0,
            received_of_window: 0,
            stale: 0,
            reorders: 0,
            gaps: 0,
            unparsed: 0,
            disconnects: 0,
        }
    }

    fn on_delivery(&mut self, d: &Delivery, now: u64) {
        if d.sent_ns < self.step_start_ns {
            self.stale += 1;
            return;
        }
        if now >= self.window_start_ns && now < self.window_end_ns {
            self.delivered_in_window += 1;
        }
        if d.sent_ns >= self.window_start_ns && d.sent_ns < self.window_end_ns {
            self.received_of_window += 1;
            record_us(&mut self.hist, now.saturating_sub(d.sent_ns) / 1000);
        }
    }
}

pub(super) async fn receive(
    mut stream: SplitStream<Ws>,
    senders: usize,
    wire: Wire,
    state: Rc<RefCell<StepState>>,
    alive: Rc<RefCell<usize>>,
) {
    // The order checks span the room's life; the step counts their increments.
    let mut seq = OrderCheck::default();
    let mut per_sender = vec![OrderCheck::default(); senders];
    while let Some(m) = stream.next().await {
        let text = match m {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        // One receive time for the whole text frame: every message of a batch arrived
        // with it.
        let now = now_ns();
        let mut st = state.borrow_mut();
        let mut objects = 0;
        for object in wire.objects(text.as_bytes()) {
            objects += 1;
            let Some(d) = wire.delivery(object) else {
                // Welcome/presence/join/leave/etc. are expected on authenticated
                // targets; on the js-bare targets every frame should be one the
                // generator sent.
                if wire.echoes() {
                    st.unparsed += 1;
                }
                continue;
            };
            let check = match d.seq {
                Some(_) => &mut seq,
                None => match per_sender.get_mut(d.sender as usize) {
                    Some(c) => c,
                    None => {
                        st.unparsed += 1;
                        continue;
                    }
                },
            };
            let (r0, g0) = (check.reorders, check.gaps);
            check.observe(d.seq.unwrap_or(d.counter));
            st.reorders += check.reorders - r0;
            st.gaps += check.gaps - g0;
            st.on_delivery(&d, now);
        }
        if objects == 0 && wire.echoes() {
            st.unparsed += 1;
        }
    }
    state.borrow_mut().disconnects += 1;
    *alive.borrow_mut() -= 1;
}
