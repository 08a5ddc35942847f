//! D1, the Worker's shared database: who the users are ([`users`]), what is revoked
//! ([`revocations`], with the isolate's snapshot), which rooms have live sockets
//! ([`rooms`]), and the server API's keys ([`api_keys`]). Every table is created by `migrations/`.

pub mod api_keys;
pub mod revocations;
pub mod rooms;
pub mod users;
