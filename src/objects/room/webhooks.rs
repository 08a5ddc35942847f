//! The room's webhook outbox (`room::webhooks`): events recorded as they happen, in the
//! same synchronous step as what caused them, and delivered from the room's alarm, one
//! batch at a time and in order, until the receiver takes them.
//!
//! Recording costs the event path two SQLite statements and, at most once per batch,
//! an alarm; nothing on that path waits for the receiver. Delivery runs in the alarm
//! handler, whose wait for the receiver does not hold up the room's other events.

use serde_json::value::RawValue;
use worker::{console_error, console_warn};

use super::instance::RoomInstance;
use crate::auth::secret::MIN_SECRET_BYTES;
use crate::protocol::frames::Member;
use crate::room::webhooks::{
    self, Kind, BATCH, MAX_AGE_MS, MAX_BACKLOG, SIGNATURE_HEADER, TIMEOUT_MS,
};
use crate::runtime::env::{now_millis, string_binding, WEBHOOK_SECRET};
use crate::runtime::outbound::{send, Outbound};

impl RoomInstance {
    /// Whether this deployment reports events at all (`WEBHOOK_URL`).
    pub(super) fn webhooks_on(&self) -> bool {
        self.config().is_ok_and(|c| c.webhook_url.is_some())
    }

    /// Records `kind` when webhooks are configured (and, for a message, when
    /// `WEBHOOK_MESSAGE_ROOMS` names the room), and makes the alarm deliver it soon.
    /// `room`: the room's name when the caller has it at hand; else the one stored.
    pub(super) fn report(
        &self,
        kind: Kind,
        room: Option<&str>,
        user: Option<&Member>,
        message: Option<&str>,
    ) {
        let Ok(config) = self.config() else { return };
        if config.webhook_url.is_none() {
            return;
        }
        let Some(room) = self.room_name(room) else {
            return;
        };
        let room = room.as_str();
        if kind == Kind::Published && !config.webhook_messages_in(room) {
            return;
        }
        let message = message.and_then(|m| RawValue::from_string(m.to_owned()).ok());
        let now = now_millis();
        let recorded = self.tables.enqueue_event(now, MAX_BACKLOG, |n| {
            webhooks::event(kind, room, n, now, user, message.as_deref())
        });
        match recorded {
            // During a backoff the retry's alarm is the one due.
            Ok(true) => self.alarm_soon(now.max(self.delivery_not_before.get())),
            Ok(false) => console_warn!("webhooks: backlog of {MAX_BACKLOG} full; event dropped"),
            Err(e) => console_error!("webhooks: {e}"),
        }
    }

    /// Delivers waiting events, a batch at a time, until none is left or the receiver
    /// fails; then the alarm is set for the retry. Called from the alarm.
    pub(super) async fn deliver_events(&self) {
        let Ok(config) = self.config() else { return };
        let Some(url) = config.webhook_url.clone() else {
            return;
        };
        // An alarm set for another reason does not cut a backoff short, nor lose it.
        let not_before = self.delivery_not_before.get();
        if now_millis() < not_before {
            self.alarm_soon(not_before);
            return;
        }
        if self.delivering.replace(true) {
            return;
        }
        loop {
            let now = now_millis();
            let batch = match self
                .tables
                .waiting_events(BATCH, now.saturating_sub(MAX_AGE_MS))
            {
                Ok(batch) => batch,
                Err(e) => {
                    console_error!("webhooks: {e}");
                    break;
                }
            };
            let Some(&(last, _)) = batch.last() else {
                self.delivery_failures.set(0);
                break;
            };
            let events: Vec<String> = batch.into_iter().map(|(_, e)| e).collect();
            match self.post(&url, &webhooks::batch(&events)).await {
                Ok(()) => {
                    self.delivery_failures.set(0);
                    if let Err(e) = self.tables.delivered_through(last) {
                        console_error!("webhooks: {e}");
                        break;
                    }
                }
                Err(why) => {
                    let failures = self.delivery_failures.get().saturating_add(1);
                    self.delivery_failures.set(failures);
                    console_warn!("webhooks: delivery failed ({failures} in a row): {why}");
                    let retry = now + webhooks::retry_delay_ms(failures);
                    self.delivery_not_before.set(retry);
                    self.alarm_soon(retry);
                    break;
                }
            }
        }
        self.delivering.set(false);
    }

    /// One signed POST; `Ok` on a 2xx answer.
    async fn post(&self, url: &str, body: &str) -> Result<(), String> {
        let secret = string_binding(&self.env, WEBHOOK_SECRET)
            .filter(|s| s.len() >= MIN_SECRET_BYTES)
            .ok_or_else(|| {
                format!("WEBHOOK_SECRET is not set or shorter than {MIN_SECRET_BYTES} bytes")
            })?;
        let t = now_millis() / 1000;
        let signature = webhooks::signature(secret.as_bytes(), t, body);
        let request = Outbound {
            url,
            json_body: Some(body),
            headers: &[(SIGNATURE_HEADER, &signature)],
            timeout_ms: TIMEOUT_MS,
            max_answer: 64 * 1024,
        };
        match send(&request).await {
            Ok((status, _)) if (200..300).contains(&status) => Ok(()),
            Ok((status, _)) => Err(format!("{url} answered {status}")),
            Err(why) => Err(why),
        }
    }
}
