//! The built-in issuer's signing keys: ES256 (P-256) key pairs kept in the database.
//!
//! The newest key that is not retired signs. Rotating makes a new key current and retires the
//! others; a retired key stays published and accepted for [`RETIRED_KEY_KEPT`], longer than
//! any token it signed lives, and is deleted by a later rotation or check.
//!
//! Rotation happens when an operator runs `tallydesk-server rotate-keys` ([`rotate`]) and on
//! its own: every instance checks at start and then daily ([`KeyRing::rotate_when_due`]) and
//! rotates when the current key is older than `TALLYDESK_SIGNING_KEY_DAYS`. Instances check
//! under one advisory lock and re-read the current key's age inside it, so when several find
//! the key old at once, the first rotates and the others find its new key young; the database
//! also holds at most one current key (`issuer_signing_keys_one_current`).
//!
//! Every server instance reads the same table: before signing, an instance asks the database
//! which key is current (one indexed query per token response) and reloads when it changed,
//! so a rotation made elsewhere signs the next token; an instance that meets a token naming a
//! key it has not loaded reloads (at most once a second); and all keys are reloaded every
//! minute, so that deleted keys stop verifying.

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
// A retired key must outlive every token it signed, plus the verifier's minute of leeway.
const _: () = assert!(
    RETIRED_KEY_KEPT.num_seconds() > super::ACCESS_TOKEN_TTL.num_seconds() + 60
        && RETIRED_KEY_KEPT.num_seconds() > super::ID_TOKEN_TTL.num_seconds() + 60
);
/// How often the loaded keys are refreshed from the database, to follow other instances.
const RELOAD_EVERY: StdDuration = StdDuration::from_secs(60);
/// Minimum time between reloads caused by tokens naming unknown keys.
const MISS_RELOAD_INTERVAL: StdDuration = StdDuration::from_secs(1);
/// Serialises key creation across server instances.
const KEYS_LOCK: i64 = 0x7461_6c6c_796b_6579; // "tallykey"
/// How often a running server checks the current key's age.
const CHECK_EVERY: StdDuration = StdDuration::from_secs(24 * 60 * 60);
/// How soon a failed check is tried again.
const RETRY_CHECK: StdDuration = StdDuration::from_secs(60 * 60);
/// The default for `TALLYDESK_SIGNING_KEY_DAYS`.
pub const DEFAULT_KEY_DAYS: u32 = 90;

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
        let mut tx = locked(&db).await?;
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
        let kid = rotate(&self.db, now).await?;
        self.reload_now(now).await?;
        Ok(kid)
    }

    /// Rotates when the current key was made `max_age` or longer ago (see [`rotate_if_older`]);
    /// returns the new key's id when it did.
    #[tracing::instrument(skip_all, err)]
    pub async fn rotate_if_older(
        &self,
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<String>> {
        let kid = rotate_if_older(&self.db, max_age, now).await?;
        if kid.is_some() {
            self.reload_now(now).await?;
        }
        Ok(kid)
    }

    /// Rotates when the current key is `max_age` old, logging a failure; returns how long to
    /// wait before checking again (a day, or an hour after a failure).
    pub async fn check_age(&self, max_age: Duration, now: DateTime<Utc>) -> StdDuration {
        match self.rotate_if_older(max_age, now).await {
            Ok(_) => CHECK_EVERY,
            Err(e) => {
                tracing::warn!(error = ?e, "could not check the age of the signing key");
                RETRY_CHECK
            }
        }
    }

    /// Checks the current key's age after `first`, then daily, as [`KeyRing::check_age`] does;
    /// runs until dropped.
    pub async fn check_age_daily(
        &self,
        first: StdDuration,
        max_age: Duration,
        clock: crate::Clock,
    ) {
        let mut wait = first;
        loop {
            tokio::time::sleep(wait).await;
            wait = self.check_age(max_age, clock.now()).await;
        }
    }

    /// The current signing key: the one the database says is current, reloaded when another
    /// instance (or `rotate-keys`) made a new one.
    pub async fn signer(&self, now: DateTime<Utc>) -> anyhow::Result<Signer> {
        let loaded = self.current_loaded();
        let stale = loaded.at.elapsed() >= RELOAD_EVERY;
        let changed = match current_kid(&self.db).await {
            Ok(kid) => kid.as_deref() != loaded.current().map(|k| k.kid.as_str()),
            Err(e) => {
                tracing::warn!(error = ?e, "could not read which signing key is current");
                false
            }
        };
        if (stale || changed)
            && let Err(e) = self.reload_now(now).await
        {
            tracing::warn!(error = ?e, "could not reload the signing keys; keeping those loaded");
        }
        let loaded = self.current_loaded();
        let key = loaded
            .current()
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

impl Loaded {
    fn current(&self) -> Option<&Key> {
        self.keys.iter().find(|k| k.retired_at.is_none())
    }
}

/// Makes a new key current, retires the others and deletes keys retired longer than
/// [`RETIRED_KEY_KEPT`] ago; returns the new key's id. Needs only the database, so it works
/// whether or not a server runs (running servers sign with the new key from their next token).
#[tracing::instrument(skip_all, err)]
pub async fn rotate(db: &PgPool, now: DateTime<Utc>) -> anyhow::Result<String> {
    let mut tx = locked(db).await?;
    let kid = rotate_in(&mut tx, now).await?;
    tx.commit().await?;
    tracing::info!(%kid, "rotated the built-in issuer's signing key");
    Ok(kid)
}

/// Rotates when the current key was made at or before `now - max_age` (or there is none);
/// else only deletes keys retired longer than [`RETIRED_KEY_KEPT`] ago. Returns the new key's
/// id when it rotated. The age is read under the lock, so of several instances checking at
/// once one rotates and the others then find a young key.
#[tracing::instrument(skip_all, err)]
pub async fn rotate_if_older(
    db: &PgPool,
    max_age: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let mut tx = locked(db).await?;
    let made = sqlx::query_scalar!(
        "select created_at from issuer_signing_keys where retired_at is null
          order by created_at desc limit 1"
    )
    .fetch_optional(&mut *tx)
    .await?;
    let kid = if made.is_some_and(|made| now - made < max_age) {
        delete_expired(&mut tx, now).await?;
        None
    } else {
        Some(rotate_in(&mut tx, now).await?)
    };
    tx.commit().await?;
    if let Some(kid) = &kid {
        tracing::info!(
            %kid,
            days = max_age.num_days(),
            "rotated the built-in issuer's signing key, which had reached its age"
        );
    }
    Ok(kid)
}

/// A transaction holding the lock that serialises changes to the keys.
async fn locked(db: &PgPool) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = db.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", KEYS_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn rotate_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    sqlx::query!(
        "update issuer_signing_keys set retired_at = $1 where retired_at is null",
        now
    )
    .execute(&mut **tx)
    .await?;
    delete_expired(tx, now).await?;
    insert_new_key(tx, now).await
}

/// Deletes the keys retired so long ago that every token they signed has expired.
async fn delete_expired(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "delete from issuer_signing_keys where retired_at <= $1",
        now - RETIRED_KEY_KEPT
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn current_kid(db: &PgPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select kid from issuer_signing_keys where retired_at is null
          order by created_at desc limit 1"
    )
    .fetch_optional(db)
    .await
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
