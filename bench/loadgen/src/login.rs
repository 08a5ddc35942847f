//! The login load of scenario 3 (`scenario/login.rs`): POST /login, closed loop
//! (PBKDF2-SHA256 at 100,000 iterations dominates).

use crate::http::request;
use crate::stats::{new_histogram, record_us, Latency};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub const USER: &str = "bench";
pub const PASSWORD: &str = "bench-password-123";

#[derive(Debug, Serialize, Clone)]
pub struct LoginResult {
    pub in_flight: u64,
    pub duration_s: f64,
    pub attempts: u64,
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub logins_per_s: f64,
    pub latency: Option<Latency>,
    pub note: &'static str,
}

/// Creates the bench user through the admin API.
pub async fn seed(addr: &str, admin_token: &str) -> Result<(), String> {
    let body = serde_json::json!({ "password": PASSWORD }).to_string();
    let auth = format!("Bearer {admin_token}");
    let r = request(
        addr,
        "PUT",
        &format!("/admin/users/{USER}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(format!(
            "PUT /admin/users/{USER}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ))
    }
}

/// `in_flight` workers posting logins back to back for `duration`.
pub async fn run(addr: &str, in_flight: u64, duration: Duration) -> LoginResult {
    struct Acc {
        attempts: u64,
        ok: u64,
        failures: BTreeMap<String, u64>,
        hist: hdrhistogram::Histogram<u64>,
    }
    let acc = Rc::new(RefCell::new(Acc {
        attempts: 0,
        ok: 0,
        failures: BTreeMap::new(),
        hist: new_histogram(),
    }));
    let body = serde_json::json!({ "username": USER, "password": PASSWORD }).to_string();
    let end = Instant::now() + duration;
    let mut handles = Vec::new();
    for _ in 0..in_flight {
        let (acc, addr, body) = (acc.clone(), addr.to_owned(), body.clone());
        handles.push(tokio::task::spawn_local(async move {
            while Instant::now() < end {
                let t0 = Instant::now();
                let r = request(
                    &addr,
                    "POST",
                    "/login",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                )
                .await;
                let elapsed = t0.elapsed();
                if Instant::now() > end {
                    break;
                }
                let mut a = acc.borrow_mut();
                a.attempts += 1;
                let why = match r {
                    Ok(r) if r.status == 200 => {
                        let token = serde_json::from_slice::<serde_json::Value>(&r.body)
                            .ok()
                            .and_then(|v| v["token"].as_str().map(|t| t.split('.').count() == 3));
                        if token == Some(true) {
                            a.ok += 1;
                            record_us(&mut a.hist, elapsed.as_micros() as u64);
                            continue;
                        }
                        "200 without a token".to_string()
                    }
                    Ok(r) => format!("status {}", r.status),
                    Err(e) => e.chars().take(60).collect(),
                };
                *a.failures.entry(why).or_default() += 1;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let a = acc.borrow();
    LoginResult {
        in_flight,
        duration_s: duration.as_secs_f64(),
        attempts: a.attempts,
        ok: a.ok,
        failed: a.attempts - a.ok,
        failures: a.failures.clone(),
        logins_per_s: a.ok as f64 / duration.as_secs_f64(),
        latency: Latency::of(&a.hist),
        note:
            "both targets hash with PBKDF2-SHA256 at 100,000 iterations; that dominates each login",
    }
}
