//! `/admin/api-keys`: the server API's keys (`auth::api_keys`), made, listed and deleted
//! behind the admin guard (`super::admin`).

use serde::Serialize;
use worker::{Env, Request, Response};

use crate::auth::api_keys::{check_request, digest, ApiKey, KeyRequest, NewKey};
use crate::runtime::env::now_secs;
use crate::runtime::error::ApiError;
use crate::runtime::http::{json, read_json};
use crate::store::api_keys::{ApiKeyStore, KEY_CACHE_MS};

const MAX_KEY_BODY: usize = 8 * 1024;

/// `POST /admin/api-keys` `{"name", "scopes", "rooms"}`: 201 with the key, shown this
/// once; 409 `conflict` when the name is taken.
pub async fn create(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Made<'a> {
        #[serde(flatten)]
        record: &'a ApiKey,
        key: &'a str,
    }
    let request: KeyRequest = read_json(&mut req, MAX_KEY_BODY).await?;
    let scopes = check_request(&request).map_err(ApiError::BadRequest)?;
    let new = NewKey::generate();
    let record = ApiKey {
        id: new.id,
        name: request.name,
        scopes,
        rooms: request.rooms,
        created_at: now_secs(),
    };
    let store = ApiKeyStore::new(env)?;
    if store.create(&record, &digest(&new.key)).await?.is_none() {
        return Err(ApiError::Conflict(format!(
            "an API key named {:?} exists; delete it first or pick another name",
            record.name
        )));
    }
    json(
        201,
        &Made {
            record: &record,
            key: &new.key,
        },
    )
}

/// `GET /admin/api-keys`: every key's record, never a key.
pub async fn list(env: &Env) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Keys {
        api_keys: Vec<ApiKey>,
    }
    let api_keys = ApiKeyStore::new(env)?.list().await?;
    json(200, &Keys { api_keys })
}

/// `DELETE /admin/api-keys/{id}`: 204; the key stops working in every isolate within
/// [`KEY_CACHE_MS`]. 404 `not_found` for an unknown id.
pub async fn delete(env: &Env, id: &str) -> Result<Response, ApiError> {
    if ApiKeyStore::new(env)?.delete(id).await? {
        Ok(Response::empty()?.with_status(204))
    } else {
        Err(ApiError::NotFound(format!(
            "no API key {id:?} (deleted keys stop working within {} s)",
            KEY_CACHE_MS / 1000
        )))
    }
}
