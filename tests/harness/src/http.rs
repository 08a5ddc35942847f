//! HTTP clients of a runtime: [`Reply`] (a response as a test looks at it), logins of the
//! seeded users, and `POST /ws-ticket`.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

use crate::runtime::{Server, USERS};
use crate::tokens::claims_of;

/// A client address no other request of this process has used (a `/64` of the IPv6
/// documentation range), to send as `CF-Connecting-IP`. Requests that fail on purpose
/// send one each, so their failures never add up to the per-address limits that other
/// tests of the same runtime (all from 127.0.0.1 by default) would then run into.
pub fn fresh_address() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("2001:db8:{:x}:{:x}::1", n >> 16, n & 0xffff)
}

/// An HTTP response as a test looks at it: status, headers, raw text, and the JSON (or
/// `Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn from(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts status, JSON error code, a message, nothing else in the body, and the
    /// JSON content type.
    pub fn expect_error(&self, status: u16, code: &str, case: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{case}: body {}",
            self.text
        );
        assert!(
            self.json["message"].is_string(),
            "{case}: no message: {}",
            self.text
        );
        assert_eq!(
            self.json.as_object().map(|o| o.len()),
            Some(2),
            "{case}: error body has exactly error and message: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{case}"
        );
    }
}

impl Server {
    /// `POST /login` with a JSON body.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http()
            .post(format!("{}/login", self.url))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Logs a seeded user in and returns the token.
    pub async fn token(&self, username: &str) -> String {
        let (_, password, _) = USERS
            .iter()
            .find(|(u, _, _)| *u == username)
            .expect("seeded user");
        let res = self.login(username, password).await;
        assert_eq!(res.status(), 200, "login {username}");
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// The user id of a seeded user (from a login).
    pub async fn user_id(&self, username: &str) -> String {
        let token = self.token(username).await;
        claims_of(&token)["sub"].as_str().unwrap().to_owned()
    }
}

/// `POST /ws-ticket` with `bearer` (if any) and a JSON `body` (if any).
pub async fn ticket_request(s: &Server, bearer: Option<&str>, body: Option<&Value>) -> Reply {
    let mut req = s.http().post(format!("{}/ws-ticket", s.url));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// A ticket for `token`, bound to `room` if given (asserting 200).
pub async fn ticket(s: &Server, token: &str, room: Option<&str>) -> String {
    let body = room.map(|r| json!({"room": r}));
    let r = ticket_request(s, Some(token), body.as_ref()).await;
    assert_eq!(r.status, 200, "ticket for {room:?}: {}", r.text);
    r.json["ticket"].as_str().expect("ticket").to_owned()
}
