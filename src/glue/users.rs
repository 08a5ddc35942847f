//! The user store: the `users` table in D1 (created by `migrations/`).
//!
//! Usernames are stored lowercased and matched exactly, so `Alice` and `alice` are one
//! account. Password hashes never leave this module except into the login check: the
//! listing type has no hash field at all.

use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};

use super::DB_BINDING;
use crate::error::ApiError;

/// Longest username and display name accepted (characters / bytes of ASCII).
pub const MAX_USERNAME: usize = 64;
pub const MAX_DISPLAY_NAME: usize = 64;

/// A user as the admin API shows it. Deliberately without the password hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: String,
    pub created_at: u64,
    /// Room grants put in this user's tokens (`rooms` claim); `None`: no claim.
    #[serde(default)]
    pub rooms: Option<Grants>,
}

/// Room patterns as stored: a JSON array in a TEXT column (D1 has no array type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Grants(pub Vec<String>);

impl Grants {
    pub fn to_column(&self) -> String {
        serde_json::to_string(&self.0).expect("strings serialize")
    }
}

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text)
            .map(Grants)
            .map_err(serde::de::Error::custom)
    }
}

/// What login needs: the public identity and the stored hash.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub id: String,
    pub name: String,
    pub password_hash: String,
    #[serde(default)]
    pub rooms: Option<Grants>,
}

/// Normalizes a username for storage and lookup, or `None` when it is not acceptable:
/// 1–64 characters of `[a-z0-9_.-]` after lowercasing.
pub fn normalize_username(raw: &str) -> Option<String> {
    let name = raw.to_ascii_lowercase();
    let ok = (1..=MAX_USERNAME).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    ok.then_some(name)
}

/// A display name must be 1–64 characters with no control characters.
pub fn valid_display_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=MAX_DISPLAY_NAME).contains(&count)
        && !name.chars().any(char::is_control)
        && !name.trim().is_empty()
}

fn grants_column(rooms: Option<Option<&Grants>>) -> JsValue {
    match rooms.flatten() {
        Some(g) => JsValue::from_str(&g.to_column()),
        None => JsValue::NULL,
    }
}

pub struct UserStore {
    db: D1Database,
}

const USER_COLUMNS: &str = "id, username, display_name AS name, created_at, rooms";

impl UserStore {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let db = env
            .d1(DB_BINDING)
            .map_err(|e| ApiError::Misconfigured(format!("D1 binding {DB_BINDING}: {e}")))?;
        Ok(Self { db })
    }

    /// Credentials for `username` (already normalized), if the user exists.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>, ApiError> {
        Ok(self
            .db
            .prepare(
                "SELECT id, display_name AS name, password_hash, rooms FROM users WHERE username = ?1",
            )
            .bind(&[username.into()])?
            .first::<Credentials>(None)
            .await?)
    }

    pub async fn find(&self, username: &str) -> Result<Option<User>, ApiError> {
        Ok(self
            .db
            .prepare(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
            ))
            .bind(&[username.into()])?
            .first::<User>(None)
            .await?)
    }

    /// Creates the user, or — when `username` exists — replaces its display name and
    /// password hash, and its room grants when `rooms` is `Some` (`Some(None)` clears
    /// them). One statement, so two concurrent calls cannot create two rows. Returns the
    /// stored user and whether it was created.
    pub async fn upsert(
        &self,
        new_id: &str,
        username: &str,
        name: &str,
        password_hash: &str,
        rooms: Option<Option<&Grants>>,
        now: u64,
    ) -> Result<(User, bool), ApiError> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(flatten)]
            user: User,
            created: u8,
        }
        let row = self
            .db
            .prepare(format!(
                "INSERT INTO users (id, username, display_name, password_hash, created_at, rooms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?7)
                 ON CONFLICT(username) DO UPDATE
                   SET display_name = excluded.display_name,
                       password_hash = excluded.password_hash,
                       rooms = CASE WHEN ?6 THEN excluded.rooms ELSE rooms END
                 RETURNING {USER_COLUMNS}, id = ?1 AS created"
            ))
            .bind(&[
                new_id.into(),
                username.into(),
                name.into(),
                password_hash.into(),
                JsValue::from_f64(now as f64),
                JsValue::from_bool(rooms.is_some()),
                grants_column(rooms),
            ])?
            .first::<Row>(None)
            .await?
            .ok_or_else(|| ApiError::Internal("upsert returned no row".into()))?;
        Ok((row.user, row.created != 0))
    }

    /// Changes the display name and/or room grants of an existing user (the password
    /// stays). `None` leaves a field as it is; `Some(None)` clears the grants.
    pub async fn update_profile(
        &self,
        username: &str,
        name: Option<&str>,
        rooms: Option<Option<&Grants>>,
    ) -> Result<Option<User>, ApiError> {
        Ok(self
            .db
            .prepare(format!(
                "UPDATE users SET display_name = COALESCE(?2, display_name),
                    rooms = CASE WHEN ?3 THEN ?4 ELSE rooms END
                 WHERE username = ?1 RETURNING {USER_COLUMNS}"
            ))
            .bind(&[
                username.into(),
                name.map_or(JsValue::NULL, JsValue::from_str),
                JsValue::from_bool(rooms.is_some()),
                grants_column(rooms),
            ])?
            .first::<User>(None)
            .await?)
    }

    /// Deletes the user; `false` when there was none.
    pub async fn delete(&self, username: &str) -> Result<bool, ApiError> {
        let gone = self
            .db
            .prepare("DELETE FROM users WHERE username = ?1 RETURNING id")
            .bind(&[username.into()])?
            .all()
            .await?
            .results::<serde_json::Value>()?;
        Ok(!gone.is_empty())
    }

    pub async fn list(&self) -> Result<Vec<User>, ApiError> {
        Ok(self
            .db
            .prepare(format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username"
            ))
            .all()
            .await?
            .results::<User>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(normalize_username("Alice").as_deref(), Some("alice"));
        assert_eq!(
            normalize_username("bob_2.x-y").as_deref(),
            Some("bob_2.x-y")
        );
        for bad in ["", "a b", "ünï", "a/b", &"a".repeat(65)] {
            assert_eq!(normalize_username(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_names() {
        assert!(valid_display_name("Alice Liddell"));
        assert!(valid_display_name("Zoë 🌟"));
        for bad in ["", "   ", "tab\there", "new\nline", &"x".repeat(65)] {
            assert!(!valid_display_name(bad), "{bad:?}");
        }
    }
}
