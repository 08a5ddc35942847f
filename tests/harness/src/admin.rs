//! Calls to the admin API (`/admin/...`): room stats, user records, revocations and
//! server API keys. All
//! but [`Server::room_stats`] send the test `ADMIN_TOKEN`.

use serde_json::{json, Value};

use crate::http::{fresh_address, Reply};
use crate::runtime::{Server, ADMIN_TOKEN};
use crate::tokens::now;

impl Server {
    /// `GET /admin/rooms/{room}` (the room's stats), with `admin_token` if given.
    pub async fn room_stats(&self, room: &str, admin_token: Option<&str>) -> Reply {
        let mut req = self
            .http()
            .get(format!("{}/admin/rooms/{room}", self.url))
            .header("cf-connecting-ip", fresh_address());
        if let Some(t) = admin_token {
            req = req.bearer_auth(t);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// The random id of the in-memory instance of `room` that answers its admin stats: a
    /// different one after an eviction.
    pub async fn room_instance(&self, room: &str) -> String {
        let stats = self.room_stats(room, Some(ADMIN_TOKEN)).await;
        assert_eq!(stats.status, 200, "{}", stats.text);
        stats.json["instance"].as_str().unwrap().to_owned()
    }
}

/// A new server API key named `name` with `scopes` and `rooms` (`POST
/// /admin/api-keys`, asserting 201): its id and the key itself.
pub async fn make_api_key(
    s: &Server,
    name: &str,
    scopes: &[&str],
    rooms: &[&str],
) -> (String, String) {
    let req = s
        .http()
        .post(format!("{}/admin/api-keys", s.url))
        .header("cf-connecting-ip", fresh_address())
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": name, "scopes": scopes, "rooms": rooms}));
    let r = Reply::from(req.send().await.unwrap()).await;
    assert_eq!(r.status, 201, "make key {name}: {}", r.text);
    (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["key"].as_str().unwrap().to_owned(),
    )
}

/// `{method} {path}` with the admin token and a JSON body.
async fn admin_send(s: &Server, method: reqwest::Method, path: &str, body: &Value) -> Reply {
    let url = format!("{}{path}", s.url);
    let req = s.http().request(method, url).bearer_auth(ADMIN_TOKEN);
    Reply::from(req.json(body).send().await.unwrap()).await
}

/// `POST {path}` with the admin token and a JSON body.
pub async fn admin_post(s: &Server, path: &str, body: &Value) -> Reply {
    admin_send(s, reqwest::Method::POST, path, body).await
}

/// `PUT /admin/users/{user}` with a JSON body.
pub async fn admin_put_user(s: &Server, user: &str, body: &Value) -> Reply {
    let path = format!("/admin/users/{user}");
    admin_send(s, reqwest::Method::PUT, &path, body).await
}

/// Revokes one token by `jti` (asserting 200).
pub async fn revoke_jti(s: &Server, jti: &str) {
    let r = admin_post(s, "/admin/revoke", &json!({"jti": jti})).await;
    assert_eq!(r.status, 200, "revoke jti {jti}: {}", r.text);
}

/// Revokes every token of `sub` for the next hour (asserting 200).
pub async fn revoke_sub(s: &Server, sub: &str) {
    let r = admin_post(
        s,
        "/admin/revoke",
        &json!({"sub": sub, "until": now() + 3600}),
    )
    .await;
    assert_eq!(r.status, 200, "revoke sub {sub}: {}", r.text);
}
