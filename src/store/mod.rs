//! D1, the Worker's shared database: who the users are ([`users`]), what is revoked
//! ([`revocations`], with the isolate's snapshot), and which rooms have live sockets
//! ([`rooms`]). Every table is created by `migrations/`.

pub mod revocations;
pub mod rooms;
pub mod users;
