//! Console sessions, written once for both engines like `sites_sql`. A
//! session is found by the SHA-256 of its id, so the database never holds
//! an id a browser could present, and every node serving the database
//! sees the same sessions.

use std::marker::PhantomData;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::{ConsoleSession, StoreError, StoreResult};

/// The shared queries, for the engine `DB`.
pub struct SessionSql<DB>(PhantomData<DB>);

fn unexpected(error: sqlx::Error) -> StoreError {
    StoreError::from_driver(error)
}

impl<DB> SessionSql<DB>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Stores a new session and forgets those that ended before `now_ms`.
    pub async fn insert(
        pool: &Pool<DB>,
        digest: &[u8],
        access_key: &str,
        csrf: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(pool)
            .await
            .map_err(unexpected)?;
        sqlx::query(
            "INSERT INTO console_sessions (digest, access_key, csrf, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(digest.to_vec())
        .bind(access_key.to_owned())
        .bind(csrf.to_owned())
        .bind(expires_at)
        .execute(pool)
        .await
        .map_err(unexpected)?;
        Ok(())
    }

    /// The session with `digest`, unless it has ended or its access key
    /// has been disabled since sign-in.
    pub async fn find(
        pool: &Pool<DB>,
        digest: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<ConsoleSession>> {
        sqlx::query(
            "SELECT k.access_key, k.account_id, s.csrf
             FROM console_sessions s JOIN access_keys k ON k.access_key = s.access_key
             WHERE s.digest = $1 AND s.expires_at > $2 AND k.enabled",
        )
        .bind(digest.to_vec())
        .bind(now_ms)
        .fetch_optional(pool)
        .await
        .and_then(|row| {
            row.map(|row| {
                Ok(ConsoleSession {
                    access_key: row.try_get(0)?,
                    account_id: row.try_get(1)?,
                    csrf: row.try_get(2)?,
                })
            })
            .transpose()
        })
        .map_err(unexpected)
    }

    /// Ends the session with `digest`, if there is one.
    pub async fn delete(pool: &Pool<DB>, digest: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM console_sessions WHERE digest = $1")
            .bind(digest.to_vec())
            .execute(pool)
            .await
            .map_err(unexpected)?;
        Ok(())
    }
}
