//! What is kept beside a site, written once for both engines like
//! `policies_sql`: its sealed upstream license servers and the digest of
//! its KMS token that CPIX requests are matched against.

use std::marker::PhantomData;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::{StoreError, StoreResult};

/// The shared queries, for the engine `DB`.
pub struct SiteSql<DB>(PhantomData<DB>);

fn unexpected(error: sqlx::Error) -> StoreError {
    StoreError::from_driver(error)
}

impl<DB> SiteSql<DB>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// A site's sealed license servers, when it has any.
    pub async fn find_license_servers(
        pool: &Pool<DB>,
        site_pk: i64,
    ) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query("SELECT servers_sealed FROM site_license_servers WHERE site_pk = $1")
            .bind(site_pk)
            .fetch_optional(pool)
            .await
            .and_then(|row| row.map(|row| row.try_get(0)).transpose())
            .map_err(unexpected)
    }

    /// Stores (or replaces) a site's sealed license servers.
    pub async fn save_license_servers(
        pool: &Pool<DB>,
        site_pk: i64,
        sealed: &[u8],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO site_license_servers (site_pk, servers_sealed) VALUES ($1, $2)
             ON CONFLICT (site_pk) DO UPDATE SET servers_sealed = excluded.servers_sealed",
        )
        .bind(site_pk)
        .bind(sealed.to_vec())
        .execute(pool)
        .await
        .map_err(unexpected)?;
        Ok(())
    }

    /// The account and public id of the site whose KMS token has `digest`.
    pub async fn find_kms_token_owner(
        pool: &Pool<DB>,
        digest: &[u8],
    ) -> StoreResult<Option<(i64, String)>> {
        sqlx::query(
            "SELECT s.account_id, s.site_id FROM kms_token_digests d JOIN sites s ON s.pk = d.site_pk
             WHERE d.digest = $1",
        )
        .bind(digest.to_vec())
        .fetch_optional(pool)
        .await
        .and_then(|row| row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).transpose())
        .map_err(unexpected)
    }

    /// Internal keys and sealed KMS tokens of the sites with no digest yet.
    pub async fn list_unindexed_kms_tokens(pool: &Pool<DB>) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT pk, kms_token_sealed FROM sites
             WHERE NOT EXISTS (SELECT 1 FROM kms_token_digests d WHERE d.site_pk = sites.pk)",
        )
        .fetch_all(pool)
        .await
        .map_err(unexpected)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unexpected)
    }

    /// Records the digest of a site's KMS token; a second node doing the
    /// same at the same time is no error.
    pub async fn index_kms_token(pool: &Pool<DB>, site_pk: i64, digest: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO kms_token_digests (digest, site_pk) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest.to_vec())
        .bind(site_pk)
        .execute(pool)
        .await
        .map_err(unexpected)?;
        Ok(())
    }
}
