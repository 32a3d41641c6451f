//! The built-in issuer's signing keys: ES256 (P-256) key pairs kept in the database.
//!
//! The newest key that is not retired signs. Rotating makes a new key current and retires the
//! others; a retired key stays published and accepted for [`RETIRED_KEY_KEPT`], longer than
//! any token it signed lives. Every server instance reads the same table: an instance that
//! meets a token naming a key it has not loaded reloads (at most once a second), and the
//! current key is reloaded every minute, so a rotation made by one instance reaches the others.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration as StdDuration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::time::Instant;

use crate::auth::jwt::TokenError;

pub const ALGORITHM: &str = "ES256";
/// How long a retired key keeps verifying: longer than access and ID tokens live, with leeway.
pub const RETIRED_KEY_KEPT: Duration = Duration::hours(1);
/// How often the loaded keys are refreshed from the database, to follow other instances.
const RELOAD_EVERY: StdDuration = StdDuration::from_secs(60);
/// Minimum time between reloads caused by tokens naming unknown keys.
const MISS_RELOAD_INTERVAL: StdDuration = StdDuration::from_secs(1);
/// Serialises key creation across server instances.
const KEYS_LOCK: i64 = 0x7461_6c6c_796b_6579; // "tallykey"

/// The signing keys, loaded from the database and reloaded as needed.
pub struct KeyRing {
    db: PgPool,
    loaded: RwLock<Arc<Loaded>>,
    /// When a token naming an unknown key last caused a reload; held while reloading.
    reload: tokio::sync::Mutex<Option<Instant>>,
}

struct Loaded {
    /// Newest first; the first one not retired is current.
    keys: Vec<Key>,
    at: Instant,
}

struct Key {
    kid: String,
    retired_at: Option<DateTime<Utc>>,
    signing: EncodingKey,
    verifying: DecodingKey,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded = self.current_loaded();
        f.debug_struct("KeyRing")
            .field(
                "kids",
                &loaded
                    .keys
                    .iter()
                    .map(|k| k.kid.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A key that signs: its id and the private key (never printed).
pub struct Signer {
    pub kid: String,
    pub key: EncodingKey,
}

impl KeyRing {
    /// Loads the keys, making the first one when there is none.
    pub async fn open(db: PgPool, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let mut tx = db.begin().await?;
        sqlx::query!("select pg_advisory_xact_lock($1)", KEYS_LOCK)
            .execute(&mut *tx)
            .await?;
        let current = sqlx::query_scalar!(
            "select kid from issuer_signing_keys where retired_at is null limit 1"
        )
        .fetch_optional(&mut *tx)
        .await?;
        if current.is_none() {
            let kid = insert_new_key(&mut tx, now).await?;
            tracing::info!(%kid, "made the built-in issuer's first signing key");
        }
        tx.commit().await?;
        let ring = KeyRing {
            loaded: RwLock::new(Arc::new(load(&db, now).await?)),
            db,
            reload: tokio::sync::Mutex::new(None),
        };
        Ok(ring)
    }

    /// Makes a new key current and retires the others; returns the new key's id.
    #[tracing::instrument(skip_all, err)]
    pub async fn rotate(&self, now: DateTime<Utc>) -> anyhow::Result<String> {
        let mut tx = self.db.begin().await?;
        sqlx::query!("select pg_advisory_xact_lock($1)", KEYS_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query!(
            "update issuer_signing_keys set retired_at = $1 where retired_at is null",
            now
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "delete from issuer_signing_keys where retired_at < $1",
            now - RETIRED_KEY_KEPT
        )
        .execute(&mut *tx)
        .await?;
        let kid = insert_new_key(&mut tx, now).await?;
        tx.commit().await?;
        tracing::info!(%kid, "rotated the built-in issuer's signing key");
        self.reload_now(now).await?;
        Ok(kid)
    }

    /// The current signing key.
    pub async fn signer(&self, now: DateTime<Utc>) -> anyhow::Result<Signer> {
        if self.current_loaded().at.elapsed() >= RELOAD_EVERY
            && let Err(e) = self.reload_now(now).await
        {
            tracing::warn!(error = ?e, "could not reload the signing keys; keeping those loaded");
        }
        let loaded = self.current_loaded();
        let key = loaded
            .keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .context("the built-in issuer has no current signing key")?;
        Ok(Signer {
            kid: key.kid.clone(),
            key: key.signing.clone(),
        })
    }

    /// The key that verifies a token with this `kid` and `alg`, reloading once on a miss.
    pub async fn verification_key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: DateTime<Utc>,
    ) -> Result<DecodingKey, TokenError> {
        if alg != Algorithm::ES256 {
            return Err(TokenError::AlgorithmMismatch);
        }
        let kid = kid.ok_or(TokenError::UnknownKey)?;
        let stale = self.current_loaded().at.elapsed() >= RELOAD_EVERY;
        if !stale && let Some(key) = self.find(kid, now) {
            return Ok(key);
        }
        {
            let mut last = self.reload.lock().await;
            let due = stale || last.is_none_or(|at| at.elapsed() >= MISS_RELOAD_INTERVAL);
            if due {
                *last = Some(Instant::now());
                match load(&self.db, now).await {
                    Ok(fresh) => self.store(fresh),
                    Err(e) => {
                        tracing::warn!(error = ?e, "could not reload the signing keys");
                    }
                }
            }
        }
        self.find(kid, now).ok_or(TokenError::UnknownKey)
    }

    /// The published keys (JWKS `keys`), read from the database.
    pub async fn jwks(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<Value>> {
        let keys = sqlx::query_scalar!(
            "select public_jwk from issuer_signing_keys
              where retired_at is null or retired_at > $1
              order by created_at desc",
            now - RETIRED_KEY_KEPT
        )
        .fetch_all(&self.db)
        .await?;
        Ok(keys)
    }

    fn find(&self, kid: &str, now: DateTime<Utc>) -> Option<DecodingKey> {
        let loaded = self.current_loaded();
        loaded
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .filter(|k| k.retired_at.is_none_or(|at| at + RETIRED_KEY_KEPT > now))
            .map(|k| k.verifying.clone())
    }

    async fn reload_now(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let _single_flight = self.reload.lock().await;
        let fresh = load(&self.db, now).await?;
        self.store(fresh);
        Ok(())
    }

    fn current_loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, fresh: Loaded) {
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
    }
}

async fn load(db: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Loaded> {
    let rows = sqlx::query!(
        "select kid, private_key_pem, public_jwk, retired_at from issuer_signing_keys
          where retired_at is null or retired_at > $1
          order by created_at desc, kid",
        now - RETIRED_KEY_KEPT
    )
    .fetch_all(db)
    .await
    .context("loading the signing keys")?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let signing = EncodingKey::from_ec_pem(row.private_key_pem.as_bytes())
            .with_context(|| format!("signing key {} is not a P-256 PKCS#8 key", row.kid))?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(row.public_jwk)
            .with_context(|| format!("the public key of {} is not a JWK", row.kid))?;
        let verifying = DecodingKey::from_jwk(&jwk)
            .with_context(|| format!("the public key of {} is unusable", row.kid))?;
        keys.push(Key {
            kid: row.kid,
            retired_at: row.retired_at,
            signing,
            verifying,
        });
    }
    Ok(Loaded {
        keys,
        at: Instant::now(),
    })
}

async fn insert_new_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding a new signing key")?;
    let point = signing.verifying_key().to_encoded_point(false);
    let kid = format!("es256-{}", uuid::Uuid::now_v7().simple());
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": ALGORITHM, "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(point.x().context("the public key's x")?),
        "y": URL_SAFE_NO_PAD.encode(point.y().context("the public key's y")?),
    });
    sqlx::query!(
        "insert into issuer_signing_keys (kid, algorithm, private_key_pem, public_jwk, created_at)
         values ($1, $2, $3, $4, $5)",
        kid,
        ALGORITHM,
        pem.as_str(),
        jwk,
        now
    )
    .execute(&mut **tx)
    .await?;
    Ok(kid)
}
