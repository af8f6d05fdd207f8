//! Integration tests: the real service on a real port with a fresh SQLite
//! database per test.

mod cases;
mod cpix;
mod demo;
mod export;
mod helpers;
mod history;
mod isolation;
mod policies;
mod service;
mod sites;
mod upstream;
mod upstream_double;
