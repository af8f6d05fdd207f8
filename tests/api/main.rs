//! Integration tests: the real service on a real port with a fresh SQLite
//! database per test.

mod cases;
mod console;
// Shared with the durability and multinode tests, which use the rest of it.
#[allow(dead_code)]
#[path = "../support/client.rs"]
mod client;
mod cpix;
mod demo;
mod export;
mod guard;
mod helpers;
mod history;
mod isolation;
mod openapi;
mod policies;
#[path = "../support/serve.rs"]
mod serve;
mod service;
mod sites;
mod summary;
mod upstream;
mod upstream_double;
