//! Verification of OAuth/OIDC bearer access tokens (JWTs) from configured issuers.
//!
//! Each issuer's discovery document and key set (JWKS) are fetched lazily, on the first token
//! that names the issuer, so the server starts while the identity provider is down. Keys are
//! cached per issuer and refetched when a token names a key the cache does not hold (key
//! rotation) or when the cached set is older than the maximum key age (key revocation). Refetches
//! are single-flight per issuer and rate-limited, so a flood of tokens with made-up key ids
//! cannot turn into a flood of requests to the identity provider.
//!
//! Time is a parameter: `exp` and `nbf`, the refetch interval and the key age are all measured
//! against the `now` given to [`Verifier::verify`], never against the system clock.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tallydesk_shared::api::ErrorCode;

use crate::issuer::KeyRing;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 60;
/// Default minimum time between two key set fetches of one issuer.
const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Default age after which a cached key set is refetched, so that removed keys stop verifying.
const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(60 * 60);
/// Bound on each discovery or key set request; a fetch holds up the requests waiting for it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// RSA keys shorter than this are not trusted (RFC 7518 §3.3 requires 2048 bits).
const MIN_RSA_MODULUS_BITS: usize = 2048;

/// Verifies bearer access tokens against the keys of the configured issuers.
///
/// Cheap to clone: clones share the cached keys (the intervals are per handle, so set them
/// before cloning).
#[derive(Clone)]
pub struct Verifier {
    shared: Arc<Shared>,
    refetch_interval: Duration,
    max_key_age: Duration,
}

struct Shared {
    issuer_urls: Vec<String>,
    issuers: Vec<Issuer>,
    audience: String,
    http: reqwest::Client,
}

/// What a verified token says about its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// False unless the token says the issuer verified `email`.
    pub email_verified: bool,
    pub name: Option<String>,
    /// The grant (refresh-token family) the token was issued for: the built-in issuer's
    /// `grant_id` claim, which lets its tokens be revoked.
    pub grant: Option<String>,
}

/// Why a token was refused. All variants but [`TokenError::IssuerUnreachable`] and
/// [`TokenError::IssuerMisconfigured`] are the token's fault (answer 401); those two are the
/// identity provider's (see [`TokenError::is_issuer_fault`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a well-formed signed JWT")]
    Malformed,
    #[error("the token is signed with algorithm {0:?}, which is not accepted")]
    UnsupportedAlgorithm(String),
    #[error("the token's issuer is not one this server trusts")]
    UnknownIssuer,
    #[error("the token's signing key is not among the keys its issuer publishes")]
    UnknownKey,
    #[error("the token's algorithm does not match the issuer's key it names")]
    AlgorithmMismatch,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this server (audience mismatch)")]
    WrongAudience,
    #[error("the token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    #[error("the token's claim `{0}` has an invalid value")]
    InvalidClaim(&'static str),
    #[error("the token's issuer could not be reached to fetch its keys: {0}")]
    IssuerUnreachable(String),
    #[error("the token's issuer publishes an unusable configuration: {0}")]
    IssuerMisconfigured(String),
}

impl TokenError {
    /// A stable code that clients can branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Malformed => ErrorCode::TokenMalformed,
            TokenError::UnsupportedAlgorithm(_) => ErrorCode::TokenUnsupportedAlgorithm,
            TokenError::UnknownIssuer => ErrorCode::TokenUnknownIssuer,
            TokenError::UnknownKey => ErrorCode::TokenUnknownKey,
            TokenError::AlgorithmMismatch => ErrorCode::TokenAlgorithmMismatch,
            TokenError::BadSignature => ErrorCode::TokenBadSignature,
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::NotYetValid => ErrorCode::TokenNotYetValid,
            TokenError::WrongAudience => ErrorCode::TokenWrongAudience,
            TokenError::MissingClaim(_) => ErrorCode::TokenMissingClaim,
            TokenError::InvalidClaim(_) => ErrorCode::TokenInvalidClaim,
            TokenError::IssuerUnreachable(_) => ErrorCode::IssuerUnreachable,
            TokenError::IssuerMisconfigured(_) => ErrorCode::IssuerMisconfigured,
        }
    }

    /// Whether the identity provider, not the token, is at fault: the token may be fine, but
    /// its issuer's keys could not be obtained.
    pub fn is_issuer_fault(&self) -> bool {
        matches!(
            self,
            TokenError::IssuerUnreachable(_) | TokenError::IssuerMisconfigured(_)
        )
    }
}

impl Verifier {
    /// Trusts tokens from `issuers` (exact `iss` values) that name `audience` in `aud`.
    /// Performs no network request; each issuer is contacted on its first token.
    pub fn new(issuers: Vec<String>, audience: String, http: reqwest::Client) -> Self {
        let states = issuers.iter().map(|url| Issuer::new(url.clone())).collect();
        Verifier {
            shared: Arc::new(Shared {
                issuer_urls: issuers,
                issuers: states,
                audience,
                http,
            }),
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            max_key_age: DEFAULT_MAX_KEY_AGE,
        }
    }

    /// Minimum time between two JWKS refetches of one issuer triggered by an unknown `kid`
    /// (default 30 s). Within it, tokens naming an unknown key are refused without a fetch.
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Age after which an issuer's cached keys are refetched, so that keys the issuer removed
    /// stop verifying (default 1 h). If that refetch fails, the cached keys stay in use.
    pub fn with_max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// Also trusts `url`, the server's own issuer, whose keys are read from `keys` (the
    /// database) rather than fetched from the issuer's URL, which the server itself may not be
    /// able to reach.
    pub fn with_local_issuer(self, url: String, keys: Arc<KeyRing>) -> Self {
        let mut issuer_urls = vec![url.clone()];
        issuer_urls.extend(
            self.shared
                .issuer_urls
                .iter()
                .filter(|u| **u != url)
                .cloned(),
        );
        let issuers = issuer_urls
            .iter()
            .map(|u| {
                let mut issuer = Issuer::new(u.clone());
                if *u == url {
                    issuer.local = Some(keys.clone());
                }
                issuer
            })
            .collect();
        Verifier {
            shared: Arc::new(Shared {
                issuer_urls,
                issuers,
                audience: self.shared.audience.clone(),
                http: self.shared.http.clone(),
            }),
            ..self
        }
    }

    /// The trusted issuers, as configured (the local one first).
    pub fn issuers(&self) -> &[String] {
        &self.shared.issuer_urls
    }

    /// The audience access tokens must name.
    pub fn audience(&self) -> &str {
        &self.shared.audience
    }

    /// Verifies `token` (signature, issuer, audience, and validity period at `now`, with 60 s
    /// leeway) and returns its claims.
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let unverified = UnverifiedToken::parse(token)?;
        // Choosing the issuer by the unverified `iss` is safe: the signature covers these very
        // bytes, and only keys published by the issuer so chosen can verify it.
        let issuer = self
            .shared
            .issuers
            .iter()
            .find(|issuer| issuer.url == unverified.issuer)
            .ok_or(TokenError::UnknownIssuer)?;
        let key = match &issuer.local {
            Some(keys) => {
                keys.verification_key(unverified.kid.as_deref(), unverified.alg, now)
                    .await?
            }
            None => issuer.key_for(&unverified, self, now).await?,
        };
        let payload = verify_signature(token, unverified.alg, &key)?;
        check_claims(&payload, &issuer.url, &self.shared.audience, now)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.shared.issuer_urls)
            .field("audience", &self.shared.audience)
            .field("refetch_interval", &self.refetch_interval)
            .field("max_key_age", &self.max_key_age)
            .finish_non_exhaustive()
    }
}

/// What the token says about itself before its signature is checked: enough to pick the key.
struct UnverifiedToken {
    alg: Algorithm,
    kid: Option<String>,
    issuer: String,
}

impl UnverifiedToken {
    fn parse(token: &str) -> Result<Self, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = decode_json_object(header)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => accepted_algorithm(alg)?,
            _ => return Err(TokenError::Malformed),
        };
        // RFC 7515 §4.1.11: extensions marked critical must be understood; we know none.
        if header.contains_key("crit") {
            return Err(TokenError::Malformed);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(TokenError::Malformed),
        };
        let payload = decode_json_object(payload)?;
        let issuer = required_string(&payload, "iss")?;
        Ok(UnverifiedToken { alg, kid, issuer })
    }
}

fn decode_json_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// The allow-list: asymmetric signatures only. `none` and HMAC (whose "key" would be public)
/// are refused.
fn accepted_algorithm(alg: &str) -> Result<Algorithm, TokenError> {
    Ok(match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            return Err(TokenError::UnsupportedAlgorithm(
                other.chars().take(32).collect(),
            ));
        }
    })
}

/// Checks the signature only; the claims are checked by [`check_claims`] against `now`.
fn verify_signature(
    token: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<Map<String, Value>, TokenError> {
    let mut validation = Validation::new(alg);
    // jsonwebtoken would read the system clock for these; `check_claims` does them instead.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::AlgorithmMismatch,
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => {
                TokenError::IssuerMisconfigured("a published key is not a valid public key".into())
            }
            _ => TokenError::Malformed,
        }),
    }
}

fn check_claims(
    payload: &Map<String, Value>,
    issuer: &str,
    audience: &str,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let iss = required_string(payload, "iss")?;
    if iss != issuer {
        // Unreachable in practice: the issuer was chosen by this very (now verified) claim.
        return Err(TokenError::UnknownIssuer);
    }
    let audience_matches = match payload.get("aud") {
        None => return Err(TokenError::MissingClaim("aud")),
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
        Some(_) => return Err(TokenError::InvalidClaim("aud")),
    };
    if !audience_matches {
        return Err(TokenError::WrongAudience);
    }
    let now = now.timestamp();
    let expires = numeric_date(payload, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if now > expires.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if let Some(not_before) = numeric_date(payload, "nbf")?
        && not_before > now.saturating_add(LEEWAY_SECS)
    {
        return Err(TokenError::NotYetValid);
    }
    let subject = required_string(payload, "sub")?;
    let email_verified = match payload.get("email_verified") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(verified)) => *verified,
        // Some providers (e.g. Amazon Cognito) send the boolean as a string.
        Some(Value::String(s)) if s == "true" => true,
        Some(Value::String(s)) if s == "false" => false,
        Some(_) => return Err(TokenError::InvalidClaim("email_verified")),
    };
    Ok(Claims {
        issuer: iss,
        subject,
        email: optional_string(payload, "email")?,
        email_verified,
        name: optional_string(payload, "name")?,
        grant: optional_string(payload, "grant_id")?,
    })
}

/// A non-empty string claim that must be present.
fn required_string(
    payload: &Map<String, Value>,
    claim: &'static str,
) -> Result<String, TokenError> {
    optional_string(payload, claim)?.ok_or(TokenError::MissingClaim(claim))
}

/// A string claim; absent, null and empty all read as `None`.
fn optional_string(
    payload: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, TokenError> {
    match payload.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::InvalidClaim(claim)),
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional), in whole seconds.
fn numeric_date(
    payload: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, TokenError> {
    match payload.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            // RFC 7519 §2 allows fractions; `as` saturates values beyond the i64 range.
            let seconds = n.as_i64().or_else(|| n.as_f64().map(|s| s.floor() as i64));
            seconds.map(Some).ok_or(TokenError::InvalidClaim(claim))
        }
        Some(_) => Err(TokenError::InvalidClaim(claim)),
    }
}

/// One trusted issuer and its cached keys.
struct Issuer {
    url: String,
    /// The server's own issuer: keys from the database, never fetched over HTTP.
    local: Option<Arc<KeyRing>>,
    /// The last key set fetched; read without waiting on a fetch in flight.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching, so that concurrent misses cause one fetch.
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    /// From the discovery document; forgotten when a key set fetch fails.
    jwks_uri: Option<String>,
    /// When the last fetch completed, by the `now` of the request that made it.
    last_attempt: Option<DateTime<Utc>>,
    last_failure: Option<TokenError>,
}

struct KeySet {
    keys: Vec<PublishedKey>,
    /// By the `now` of the request that fetched it.
    fetched_at: DateTime<Utc>,
}

struct PublishedKey {
    kid: Option<String>,
    /// The JWK's `alg`, when it pins one.
    alg: Option<Algorithm>,
    kind: KeyKind,
    key: DecodingKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    fn signs_with(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

impl PublishedKey {
    fn accepts(&self, alg: Algorithm) -> bool {
        self.kind.signs_with(alg) && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// Reads one JWKS entry; an error says why it cannot verify signatures.
    fn parse(entry: Value) -> Result<Self, String> {
        let jwk: Jwk = serde_json::from_value(entry).map_err(|e| format!("unreadable: {e}"))?;
        let common = &jwk.common;
        if common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return Err("not a signature key (`use`)".into());
        }
        if common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return Err("not a verification key (`key_ops`)".into());
        }
        let alg = match common.key_algorithm {
            None => None,
            Some(alg) => Some(
                accepted_key_algorithm(alg)
                    .ok_or_else(|| format!("algorithm {alg} not accepted"))?,
            ),
        };
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let modulus = URL_SAFE_NO_PAD
                    .decode(&rsa.n)
                    .map_err(|_| "bad RSA modulus")?;
                if modulus_bits(&modulus) < MIN_RSA_MODULUS_BITS {
                    return Err(format!("RSA key shorter than {MIN_RSA_MODULUS_BITS} bits"));
                }
                KeyKind::Rsa
            }
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => return Err(format!("curve {:?} not supported", ec.curve)),
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                KeyKind::Ed25519
            }
            AlgorithmParameters::OctetKeyPair(_) => return Err("OKP curve not supported".into()),
            AlgorithmParameters::OctetKey(_) => {
                return Err("symmetric keys are never trusted".into());
            }
        };
        if let Some(alg) = alg
            && !kind.signs_with(alg)
        {
            return Err(format!("algorithm {alg:?} does not fit a {kind:?} key"));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable: {e}"))?;
        Ok(PublishedKey {
            kid: common.key_id.clone(),
            alg,
            kind,
            key,
        })
    }
}

fn accepted_key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn modulus_bits(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|&byte| byte != 0) {
        None => 0,
        Some(first) => (big_endian.len() - first) * 8 - big_endian[first].leading_zeros() as usize,
    }
}

impl KeySet {
    /// The key that verifies a token with this `kid` and `alg`: `Ok(None)` when the set has no
    /// such key (a refetch may find it), an error when it has one that does not fit `alg`.
    fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<Option<DecodingKey>, TokenError> {
        let mut candidates: Vec<&PublishedKey> = match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|key| key.kid.as_deref() == Some(kid))
                .collect(),
            // Without a `kid` the choice must be unambiguous.
            None if self.keys.len() == 1 => self.keys.iter().collect(),
            None => Vec::new(),
        };
        if candidates.is_empty() {
            return Ok(None);
        }
        candidates.retain(|key| key.accepts(alg));
        match candidates.first() {
            Some(key) => Ok(Some(key.key.clone())),
            None => Err(TokenError::AlgorithmMismatch),
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

impl Issuer {
    fn new(url: String) -> Self {
        Issuer {
            url,
            local: None,
            keys: RwLock::new(None),
            refresh: tokio::sync::Mutex::default(),
        }
    }

    fn cached(&self) -> Option<Arc<KeySet>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The key for `token`, from the cache or, when the cache lacks it or is too old, from a
    /// refetch of the key set (at most one per refetch interval).
    async fn key_for(
        &self,
        token: &UnverifiedToken,
        verifier: &Verifier,
        now: DateTime<Utc>,
    ) -> Result<DecodingKey, TokenError> {
        let kid = token.kid.as_deref();
        let lookup = |set: &Option<Arc<KeySet>>| -> Result<Option<DecodingKey>, TokenError> {
            match set {
                Some(set) if elapsed(set.fetched_at, now) < verifier.max_key_age => {
                    set.select(kid, token.alg)
                }
                _ => Ok(None),
            }
        };
        if let Some(key) = lookup(&self.cached())? {
            return Ok(key);
        }

        let mut state = self.refresh.lock().await;
        // Another request may have fetched while this one waited for the lock.
        let mut set = self.cached();
        if let Some(key) = lookup(&set)? {
            return Ok(key);
        }
        let due = state
            .last_attempt
            .is_none_or(|at| elapsed(at, now) >= verifier.refetch_interval);
        let mut failure = state.last_failure.clone();
        if due {
            let outcome = self.fetch(&mut state, &verifier.shared.http, now).await;
            // Recorded only once the fetch completes: a request dropped mid-fetch (client gone)
            // must not leave the issuer looking recently fetched.
            state.last_attempt = Some(now);
            match outcome {
                Ok(fresh) => {
                    let fresh = Arc::new(fresh);
                    *self.keys.write().unwrap_or_else(PoisonError::into_inner) =
                        Some(fresh.clone());
                    state.last_failure = None;
                    failure = None;
                    set = Some(fresh);
                }
                Err(e) => {
                    if set.is_some() {
                        tracing::warn!(issuer = %self.url, "could not refresh keys; keeping cached ones");
                    }
                    state.last_failure = Some(e.clone());
                    failure = Some(e);
                }
            }
        }
        drop(state);

        // A stale set still serves when no fresher one could be had.
        let found = match &set {
            Some(set) => set.select(kid, token.alg)?,
            None => None,
        };
        match (found, failure) {
            (Some(key), _) => Ok(key),
            (None, Some(failure)) => Err(failure),
            (None, None) => Err(TokenError::UnknownKey),
        }
    }

    /// Fetches the key set, discovering its address first if not yet known.
    #[tracing::instrument(skip_all, err, fields(issuer = %self.url))]
    async fn fetch(
        &self,
        state: &mut RefreshState,
        http: &reqwest::Client,
        now: DateTime<Utc>,
    ) -> Result<KeySet, TokenError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover(http).await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document: JwksDocument = match fetch_json(http, &jwks_uri).await {
            Ok(document) => document,
            Err(e) => {
                // The key set may have moved; discover again next time.
                state.jwks_uri = None;
                return Err(e);
            }
        };
        let mut keys = Vec::with_capacity(document.keys.len());
        for entry in document.keys {
            let kid = entry
                .get("kid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            match PublishedKey::parse(entry) {
                Ok(key) => keys.push(key),
                Err(reason) => tracing::debug!(issuer = %self.url, %kid, %reason, "skipping JWK"),
            }
        }
        tracing::info!(issuer = %self.url, keys = keys.len(), "fetched signing keys");
        Ok(KeySet {
            keys,
            fetched_at: now,
        })
    }

    /// Reads the issuer's discovery document and returns its `jwks_uri`.
    async fn discover(&self, http: &reqwest::Client) -> Result<String, TokenError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.url.trim_end_matches('/')
        );
        let discovery: Discovery = fetch_json(http, &url).await?;
        if discovery.issuer != self.url {
            return Err(TokenError::IssuerMisconfigured(format!(
                "{url} names issuer {:?}, not {:?}",
                discovery.issuer, self.url
            )));
        }
        Ok(discovery.jwks_uri)
    }
}

/// The time from `since` to `now`; none when `now` is earlier (requests that read the clock
/// just before a fetch completed, or a clock set back): for them no time has passed.
fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}

async fn fetch_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, TokenError> {
    let response = http
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| TokenError::IssuerUnreachable(with_causes(&e)))?;
    response.json().await.map_err(|e| {
        if e.is_decode() {
            TokenError::IssuerMisconfigured(with_causes(&e))
        } else {
            TokenError::IssuerUnreachable(with_causes(&e))
        }
    })
}

/// `e` and its sources: reqwest's own message omits the cause ("connection refused").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
