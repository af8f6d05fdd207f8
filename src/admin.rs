//! Operator actions on accounts and access keys, used by the `keys`
//! subcommands and by the first `serve` on an empty database.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::domain::ids::{generate_access_key, generate_secret_key};
use crate::secrets::{write_private_file, MasterKey};
use crate::store::Store;
use crate::wire::NewAccessKey;

/// Name of the file the first `serve` writes the initial key pair to.
pub const INITIAL_CREDENTIALS_FILE: &str = "initial-credentials";
/// Account created by the first `serve`.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Creates `account` if needed and a new key pair for it.
pub async fn create_access_key(
    store: &dyn Store,
    master_key: &MasterKey,
    account: &str,
    now_ms: i64,
) -> anyhow::Result<NewAccessKey> {
    let secret = generate_secret_key();
    let access_key = generate_access_key();
    add_access_key(store, master_key, account, &access_key, &secret, now_ms).await?;
    Ok(NewAccessKey {
        account: account.to_owned(),
        access_key,
        secret_key: secret,
    })
}

/// Stores a key pair with the given values for `account`, creating it if needed.
pub async fn add_access_key(
    store: &dyn Store,
    master_key: &MasterKey,
    account: &str,
    access_key: &str,
    secret: &str,
    now_ms: i64,
) -> anyhow::Result<()> {
    let account_id = store
        .ensure_account(account, now_ms)
        .await
        .with_context(|| format!("creating account {account}"))?;
    store
        .insert_access_key(
            account_id,
            access_key,
            &master_key.seal(secret.as_bytes()),
            now_ms,
        )
        .await
        .context("storing the access key")
}

/// On a database without keys, creates the default account and a key pair
/// and writes them to `<data_dir>/initial-credentials` (mode 0600).
/// Returns the file's path when it wrote one.
pub async fn ensure_initial_credentials(
    store: &dyn Store,
    master_key: &MasterKey,
    data_dir: &Path,
    now_ms: i64,
) -> anyhow::Result<Option<PathBuf>> {
    if !store.list_access_keys().await?.is_empty() {
        return Ok(None);
    }
    let path = data_dir.join(INITIAL_CREDENTIALS_FILE);
    let key = create_access_key(store, master_key, DEFAULT_ACCOUNT, now_ms).await?;
    let contents = format!(
        "MULTIDRM_ACCESS_KEY={}\nMULTIDRM_SECRET_KEY={}\n",
        key.access_key, key.secret_key
    );
    if path.exists() {
        std::fs::remove_file(&path)
            .with_context(|| format!("replacing stale {}", path.display()))?;
    }
    write_private_file(&path, contents.as_bytes())?;
    Ok(Some(path))
}
