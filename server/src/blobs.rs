//! Content-addressed blobs (receipt images): addressed by the SHA-256 of their bytes, kept in an
//! object store under a per-tenant prefix (`<tenant>/<first two hex digits>/<sha256>`).
//!
//! The store is the local filesystem under the data directory unless `TALLYDESK_BLOB_STORE`
//! names another: `file:///path`, or `s3://bucket/prefix` (S3 and compatible stores, configured
//! by the standard `AWS_*` variables; servers built with the `aws` feature).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use sqlx::{Postgres, Transaction};
use tallydesk_shared::{TenantId, UserId};

/// The largest blob accepted, in bytes (20 MiB).
pub const MAX_BLOB_BYTES: usize = 20 << 20;

/// The media types a receipt image may have.
pub const IMAGE_TYPES: [&str; 5] = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/tiff",
];

/// The canonical image type for a `Content-Type` value (parameters and case ignored), if it is
/// one receipts may have.
pub fn image_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    IMAGE_TYPES.into_iter().find(|t| *t == essence)
}

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(input.to_owned()))
        } else {
            Err(format!(
                "{:?} is not a SHA-256 digest (64 lowercase hex digits)",
                input.chars().take(80).collect::<String>()
            ))
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(bytes);
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Records that `user` uploaded the blob (stored already) in the tenant; uploading it again
/// changes nothing. An expense names only a receipt its submitter uploaded.
#[tracing::instrument(skip_all, err)]
pub(crate) async fn record_upload(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    sha256: &Sha256,
    user: UserId,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into blob_uploads (tenant_id, sha256, uploaded_by, uploaded_at)
         values ($1, $2, $3, $4)
         on conflict (tenant_id, sha256, uploaded_by) do nothing",
        tenant.as_uuid(),
        sha256.as_str(),
        user.as_uuid(),
        now,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether `user` uploaded the blob in the transaction's tenant.
#[tracing::instrument(skip_all, err)]
pub(crate) async fn uploaded_by(
    tx: &mut Transaction<'static, Postgres>,
    sha256: &Sha256,
    user: UserId,
) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        "select exists (select 1 from blob_uploads where sha256 = $1 and uploaded_by = $2)
             as \"found!\"",
        sha256.as_str(),
        user.as_uuid(),
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(found)
}

/// Where blobs are kept.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// For the log: where, without credentials.
    place: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// The store `setting` names (`TALLYDESK_BLOB_STORE`), or `<data_dir>/blobs` when unset.
    pub fn open(setting: Option<&str>, data_dir: &Path) -> anyhow::Result<BlobStore> {
        let setting = setting.map(str::trim).filter(|s| !s.is_empty());
        match setting {
            None => BlobStore::local(&data_dir.join("blobs")),
            Some(url) if url.starts_with("file://") => {
                BlobStore::local(Path::new(url.trim_start_matches("file://")))
            }
            Some(url) if url.starts_with("s3://") => BlobStore::s3(url),
            Some(other) => anyhow::bail!(
                "TALLYDESK_BLOB_STORE {other:?} is neither file:///path nor s3://bucket/prefix"
            ),
        }
    }

    /// Files under `dir`, which is made if missing.
    pub fn local(dir: &Path) -> anyhow::Result<BlobStore> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the blob directory {}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening the blob directory {}", dir.display()))?;
        Ok(BlobStore {
            store: Arc::new(store),
            place: format!("directory {}", dir.display()),
        })
    }

    /// Kept in this process only (until [`crate::AppState::with_blobs`]).
    pub fn in_memory() -> BlobStore {
        BlobStore {
            store: Arc::new(object_store::memory::InMemory::new()),
            place: "memory".to_owned(),
        }
    }

    #[cfg(feature = "aws")]
    fn s3(url: &str) -> anyhow::Result<BlobStore> {
        let parsed = url::Url::parse(url).context("TALLYDESK_BLOB_STORE is not a URL")?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .context("TALLYDESK_BLOB_STORE s3:// needs a bucket: s3://bucket/prefix")?;
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .context("configuring the S3 blob store from AWS_* settings")?;
        let prefix = parsed.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(BlobStore {
            store,
            place: format!("s3://{bucket}/{prefix}"),
        })
    }

    #[cfg(not(feature = "aws"))]
    fn s3(_url: &str) -> anyhow::Result<BlobStore> {
        anyhow::bail!(
            "TALLYDESK_BLOB_STORE is s3://, but this server was built without S3 support: \
             build it with `--features aws`"
        )
    }

    pub fn place(&self) -> &str {
        &self.place
    }

    fn key(tenant: TenantId, sha256: &Sha256) -> Key {
        let hex = sha256.as_str();
        Key::from(format!("{tenant}/{}/{hex}", &hex[..2]))
    }

    /// Stores `bytes` under their digest (the same bytes again change nothing).
    pub async fn put(&self, tenant: TenantId, sha256: &Sha256, bytes: Bytes) -> anyhow::Result<()> {
        self.store
            .put(&Self::key(tenant, sha256), PutPayload::from_bytes(bytes))
            .await
            .with_context(|| format!("storing blob {sha256} in the {}", self.place))?;
        Ok(())
    }

    /// The blob's bytes, if it is stored.
    pub async fn get(&self, tenant: TenantId, sha256: &Sha256) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&Self::key(tenant, sha256)).await {
            Ok(found) => Ok(Some(found.bytes().await.with_context(|| {
                format!("reading blob {sha256} from the {}", self.place)
            })?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("reading blob {sha256} from the {}", self.place))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_64_lowercase_hex_digits() {
        let empty = Sha256::of(b"");
        assert_eq!(
            empty.as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Sha256::parse(empty.as_str()), Ok(empty.clone()));
        assert!(Sha256::parse(&empty.as_str().to_uppercase()).is_err());
        assert!(Sha256::parse("abc").is_err());
        assert!(Sha256::parse("../../etc/passwd").is_err());
    }

    #[test]
    fn only_image_types_are_receipts() {
        assert_eq!(image_type("image/JPEG; q=1"), Some("image/jpeg"));
        assert_eq!(image_type("application/pdf"), None);
        assert_eq!(image_type("image/svg+xml"), None, "SVG can carry scripts");
    }
}
