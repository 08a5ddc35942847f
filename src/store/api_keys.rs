//! The server API's keys: the `api_keys` table in D1 (`migrations/0006_api_keys.sql`),
//! and each isolate's short-lived copy of the keys it has checked.
//!
//! Every API request needs its key's record. An isolate keeps a record it read for
//! [`KEY_CACHE_MS`], so a busy backend costs one D1 read per key per isolate that long,
//! and a deleted key stops working everywhere within that time. A digest never leaves
//! this module except into the constant-time check.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use worker::{D1Database, Env};

use crate::auth::api_keys::{matches, ApiKey, Scope};
use crate::runtime::d1::{db, int};
use crate::runtime::env::now_millis;
use crate::runtime::error::ApiError;

/// How long an isolate trusts a key record it read: the most a deleted key keeps
/// working.
pub const KEY_CACHE_MS: u64 = 10_000;
/// Records one isolate keeps; past it the copy starts over (a deployment has a handful
/// of keys, so only a flood of made-up ids would fill it).
const KEY_CACHE_ENTRIES: usize = 256;

/// A key's record and digest, or `None` for no such key; and when it was read (unix ms).
type Cached = (Option<(ApiKey, String)>, u64);

thread_local! {
    /// Key id → what this isolate read for it.
    static KEYS: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

#[derive(Deserialize)]
struct Row {
    id: String,
    name: String,
    scopes: String,
    rooms: String,
    created_at: u64,
    #[serde(default)]
    key_hash: Option<String>,
}

impl Row {
    fn into_key(self) -> Result<(ApiKey, Option<String>), ApiError> {
        let column = |what: &str, e: serde_json::Error| {
            ApiError::Internal(format!("api_keys.{what} of {}: {e}", self.id))
        };
        let scopes: Vec<Scope> =
            serde_json::from_str(&self.scopes).map_err(|e| column("scopes", e))?;
        let rooms: Vec<String> =
            serde_json::from_str(&self.rooms).map_err(|e| column("rooms", e))?;
        Ok((
            ApiKey {
                id: self.id,
                name: self.name,
                scopes,
                rooms,
                created_at: self.created_at,
            },
            self.key_hash,
        ))
    }
}

const LISTED: &str = "id, name, scopes, rooms, created_at";

pub struct ApiKeyStore {
    db: D1Database,
}

impl ApiKeyStore {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        Ok(Self { db: db(env)? })
    }

    /// Stores a new key under its digest; `None` when the name is taken.
    pub async fn create(&self, key: &ApiKey, digest: &str) -> Result<Option<()>, ApiError> {
        let made = self
            .db
            .prepare(
                "INSERT INTO api_keys (id, name, key_hash, scopes, rooms, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(name) DO NOTHING RETURNING id",
            )
            .bind(&[
                key.id.as_str().into(),
                key.name.as_str().into(),
                digest.into(),
                json_text(&key.scopes).into(),
                json_text(&key.rooms).into(),
                int(key.created_at),
            ])?
            .first::<Value>(None)
            .await?;
        Ok(made.map(|_| ()))
    }

    /// Every key, by name, without digests.
    pub async fn list(&self) -> Result<Vec<ApiKey>, ApiError> {
        self.db
            .prepare(format!("SELECT {LISTED} FROM api_keys ORDER BY name"))
            .all()
            .await?
            .results::<Row>()?
            .into_iter()
            .map(|row| row.into_key().map(|(key, _)| key))
            .collect()
    }

    /// Deletes key `id`; whether there was one. Other isolates drop it within
    /// [`KEY_CACHE_MS`]; this one at once.
    pub async fn delete(&self, id: &str) -> Result<bool, ApiError> {
        let gone = self
            .db
            .prepare("DELETE FROM api_keys WHERE id = ?1 RETURNING id")
            .bind(&[id.into()])?
            .first::<Value>(None)
            .await?;
        KEYS.with(|k| k.borrow_mut().remove(id));
        Ok(gone.is_some())
    }

    /// The key `presented` is, if it is one: looked up by `id` (from this isolate's copy
    /// when it is fresh), then compared by digest in constant time.
    pub async fn verify(&self, id: &str, presented: &str) -> Result<Option<ApiKey>, ApiError> {
        let now = now_millis();
        let cached = KEYS.with(|k| {
            k.borrow()
                .get(id)
                .filter(|(_, at)| now.saturating_sub(*at) < KEY_CACHE_MS)
                .map(|(record, _)| record.clone())
        });
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self.read(id).await?;
                KEYS.with(|k| {
                    let mut k = k.borrow_mut();
                    if k.len() >= KEY_CACHE_ENTRIES {
                        k.clear();
                    }
                    k.insert(id.to_owned(), (record.clone(), now));
                });
                record
            }
        };
        Ok(record.and_then(|(key, digest)| matches(&digest, presented).then_some(key)))
    }

    async fn read(&self, id: &str) -> Result<Option<(ApiKey, String)>, ApiError> {
        let Some(row) = self
            .db
            .prepare(format!(
                "SELECT {LISTED}, key_hash FROM api_keys WHERE id = ?1"
            ))
            .bind(&[id.into()])?
            .first::<Row>(None)
            .await?
        else {
            return Ok(None);
        };
        let (key, digest) = row.into_key()?;
        let digest =
            digest.ok_or_else(|| ApiError::Internal(format!("api key {id} has no digest")))?;
        Ok(Some((key, digest)))
    }
}

/// JSON text of a list column.
fn json_text<T: serde::Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).expect("lists of strings serialize")
}
