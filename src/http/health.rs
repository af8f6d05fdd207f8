//! `GET /healthz`: answers once the service is listening, which happens
//! only after the database is open and migrated.

use axum::Json;
use serde_json::{json, Value};

/// Reports that the service is ready.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "The service is up", body = Object))
)]
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
