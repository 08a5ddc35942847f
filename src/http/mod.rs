//! The Worker's routes, one file each; `lib.rs` holds the route table that calls them.
//!
//! - [`gate`]: `GET /ws/{room}`, every check before a socket exists;
//! - [`login`]: `POST /login`;
//! - [`tickets`]: `POST /ws-ticket`;
//! - [`jwks`]: `GET /.well-known/jwks.json`;
//! - [`cors`]: cross-origin access to `/login`, `/ws-ticket` and the JWKS;
//! - [`page`]: `GET /`, `/app.js`, `/app.css`, the browser chat client, and
//!   `/roomgate-client.js`;
//! - [`admin`]: `/admin/...`, users and room controls; [`revoke`]: `POST /admin/revoke`;
//!   [`api_keys`]: `/admin/api-keys`;
//! - [`api`]: `/api/v1/...`, the server API for a team's backend.
//!
//! A route reaches a Durable Object only through that object's `client`, and proves who
//! a client is only through `authn`.

pub mod admin;
pub mod api;
pub mod api_keys;
pub mod cors;
pub mod gate;
pub mod jwks;
pub mod login;
pub mod page;
pub mod revoke;
pub mod tickets;
