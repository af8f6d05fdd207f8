//! multidrm: a self-hostable multi-DRM license service speaking NAVER Cloud
//! One Click Multi DRM's REST API, built around a searchable license
//! issuance history.
//!
//! The request path reads top to bottom: [`http`] (router, signature check,
//! CORS, errors) -> [`domain`] (tokens, sites, policies, issuance rules,
//! history queries) -> [`store`] (one trait per engine, plus the batching
//! history writer).

pub mod admin;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod console;
pub mod domain;
pub mod history_cli;
pub mod history_file;
pub mod http;
pub mod monitoring;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod signing;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod wire;
