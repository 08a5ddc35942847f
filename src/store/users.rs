//! The user store: the `users` table in D1 (created by `migrations/`).
//!
//! Usernames arrive normalized (`protocol::names::normalize_username`). Password hashes
//! never leave this module except into the login check: the listing type has no hash
//! field at all.

use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};

use std::cell::Cell;

use crate::protocol::identity::RoomGrants;
use crate::runtime::d1::{db, int, text_or_null};
use crate::runtime::env::now_millis;
use crate::runtime::error::ApiError;

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
    /// The PBKDF2 iterations of the stored hash (a login at another
    /// `PBKDF2_ITERATIONS` re-hashes it). Never the hash itself.
    #[serde(default)]
    pub kdf_iterations: Option<u32>,
}

/// Room grants as stored: the JSON of either form of the `rooms` claim (an array of
/// patterns, or an object of patterns and capabilities) in a TEXT column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Grants(pub RoomGrants);

impl Grants {
    pub fn to_column(&self) -> String {
        serde_json::to_string(&self.0).expect("grants serialize")
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

fn grants_column(rooms: Option<Option<&Grants>>) -> JsValue {
    match rooms.flatten() {
        Some(g) => JsValue::from_str(&g.to_column()),
        None => JsValue::NULL,
    }
}

pub struct UserStore {
    db: D1Database,
}

/// The iteration count inside a stored hash, `pbkdf2-sha256$<iterations>$<salt>$<hash>`
/// (`auth::password`): the text between the first and the second `$`.
macro_rules! iterations_of_hash {
    () => {
        "CAST(substr(password_hash, instr(password_hash, '$') + 1,
            instr(substr(password_hash, instr(password_hash, '$') + 1), '$') - 1) AS INTEGER)"
    };
}

const USER_COLUMNS: &str = concat!(
    "id, username, display_name AS name, created_at, rooms, ",
    iterations_of_hash!(),
    " AS kdf_iterations"
);

/// How long an isolate trusts its figure of the users' usual iteration count.
const TYPICAL_ITERATIONS_MAX_AGE_MS: u64 = 10 * 60 * 1000;

thread_local! {
    /// The iteration count most stored hashes have, and when it was read (unix ms).
    static TYPICAL_ITERATIONS: Cell<Option<(Option<u32>, u64)>> = const { Cell::new(None) };
}

impl UserStore {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        Ok(Self { db: db(env)? })
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

    /// The iteration count most users' hashes have (`None`: no users), read from D1 at
    /// most once per [`TYPICAL_ITERATIONS_MAX_AGE_MS`] per isolate: every login asks,
    /// whether or not its user exists, so the read it sometimes costs says nothing about
    /// the username.
    pub async fn typical_iterations(&self) -> Result<Option<u32>, ApiError> {
        let now = now_millis();
        if let Some((typical, at)) = TYPICAL_ITERATIONS.get() {
            if now.saturating_sub(at) < TYPICAL_ITERATIONS_MAX_AGE_MS {
                return Ok(typical);
            }
        }
        #[derive(Deserialize)]
        struct Row {
            iterations: Option<u32>,
        }
        let row = self
            .db
            .prepare(concat!(
                "SELECT ",
                iterations_of_hash!(),
                " AS iterations FROM users
                 GROUP BY iterations ORDER BY COUNT(*) DESC, iterations DESC LIMIT 1"
            ))
            .first::<Row>(None)
            .await?;
        let typical = row.and_then(|r| r.iterations);
        TYPICAL_ITERATIONS.set(Some((typical, now)));
        Ok(typical)
    }

    /// Replaces user `id`'s password hash, unless it changed since `old` was read.
    pub async fn replace_hash(&self, id: &str, old: &str, new: &str) -> Result<(), ApiError> {
        self.db
            .prepare("UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2")
            .bind(&[id.into(), old.into(), new.into()])?
            .run()
            .await?;
        Ok(())
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
                int(now),
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
                text_or_null(name),
                JsValue::from_bool(rooms.is_some()),
                grants_column(rooms),
            ])?
            .first::<User>(None)
            .await?)
    }

    /// Deletes the user; its id, or `None` when there was none.
    pub async fn delete(&self, username: &str) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
        }
        let gone = self
            .db
            .prepare("DELETE FROM users WHERE username = ?1 RETURNING id")
            .bind(&[username.into()])?
            .first::<Row>(None)
            .await?;
        Ok(gone.map(|r| r.id))
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
