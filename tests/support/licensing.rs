//! License requests to a real `multidrm serve` process whose user id
//! names each one, and the history as stored, for durability tests.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

use super::client::{stored_user, Signer};

/// The content key every test license asks for.
const KID_HEX: &str = "11223344556677889900aabbccddeeff";
const KID_BASE64URL: &str = "ESIzRFVmd4iZAKq7zN3u_w";

impl Signer {
    /// Creates a site that is on and has the test content key; answers its id.
    pub async fn clearkey_site(&self, node: &str) -> String {
        let site: Value = self
            .request(reqwest::Method::POST, node, "/api/v1/sites")
            .json(&json!({"siteName": "durability"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let site_id = site["content"]["siteId"].as_str().unwrap().to_owned();
        let on = self
            .request(
                reqwest::Method::PUT,
                node,
                &format!("/api/v1/sites/{site_id}/on"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(on.status(), 200);
        let path = format!("/api/v1/sites/{site_id}/contents/movie-1/keys");
        let registered = self
            .request(reqwest::Method::POST, node, &path)
            .json(&json!({"kid": KID_HEX, "key": "ffeeddccbbaa00998877665544332211"}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 200);
        site_id
    }

    /// Asks for a ClearKey license for `user`; answers the status, or the
    /// transport error when no answer came.
    pub async fn issue(&self, node: &str, site_id: &str, user: &str) -> Result<u16, String> {
        self.license_request(node, site_id, user)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|error| error.to_string())
    }

    /// Asks for a ClearKey license for `user`; answers the response.
    pub async fn issue_response(&self, node: &str, site_id: &str, user: &str) -> reqwest::Response {
        self.license_request(node, site_id, user)
            .send()
            .await
            .unwrap()
    }

    fn license_request(&self, node: &str, site_id: &str, user: &str) -> reqwest::RequestBuilder {
        let token = json!({"siteId": site_id, "contentId": "movie-1", "drmType": "ClearKey", "userId": user});
        self.request(reqwest::Method::POST, node, "/api/v1/license")
            .header("x-drm-token", STANDARD.encode(token.to_string()))
            .body(format!(r#"{{"kids":["{KID_BASE64URL}"]}}"#))
    }

    /// The `total` the history API answers for the site.
    pub async fn history_total(&self, node: &str, site_id: &str) -> i64 {
        let path = format!("/api/v1/license/statistics?siteId={site_id}&pageSize=1");
        let page: Value = self
            .request(reqwest::Method::GET, node, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["total"]
            .as_i64()
            .unwrap_or_else(|| panic!("no total in {page}"))
    }
}

/// How many records each stored user id has, read from the database itself.
pub async fn stored_records(database_url: &str) -> HashMap<String, usize> {
    let query = "SELECT user_id, COUNT(*) AS n FROM license_records GROUP BY user_id";
    let rows = if database_url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        let rows = sqlx::query(query).fetch_all(&mut connection).await.unwrap();
        rows.iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect::<Vec<_>>()
    } else {
        let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
        let rows = sqlx::query(query).fetch_all(&mut connection).await.unwrap();
        rows.iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect::<Vec<_>>()
    };
    rows.into_iter()
        .map(|(user, n)| (user, n as usize))
        .collect()
}

/// Asserts that each of `acknowledged` is stored exactly once, that no user
/// is stored twice, and that the API's total counts every stored record.
pub fn assert_exactly_once(
    acknowledged: &[String],
    stored: &HashMap<String, usize>,
    api_total: i64,
) {
    for user in acknowledged {
        assert_eq!(
            stored.get(&stored_user(user)),
            Some(&1),
            "acknowledged license of {user} is not in the history exactly once"
        );
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert_eq!(api_total, stored.values().sum::<usize>() as i64);
}
