//! Bearer-token verification against a real (local) OIDC issuer over HTTP.
//!
//! Each test starts its own tiny identity provider serving a discovery document and a key set
//! that the test can change, and that counts how often it is fetched. Keys are generated per
//! run; none is stored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use tallydesk_server::auth::jwt::{Claims, TokenError, Verifier};

const AUDIENCE: &str = "tallydesk-api";

/// The instant every test verifies at: fixed and far from the wall clock, which proves the
/// verifier takes time as a parameter.
fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000, 0)
        .single()
        .expect("a valid timestamp")
}

fn at(offset_secs: i64) -> i64 {
    now().timestamp() + offset_secs
}

/// An ES256 key pair generated for this test run.
struct TestKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn generate(kid: &str) -> Self {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 export of a fresh key");
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).expect("jsonwebtoken reads it");
        let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string())
            .expect("the public JWK is JSON");
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        TestKey {
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(Some(&self.kid), claims)
    }

    fn sign_as(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing succeeds")
    }
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() })
}

/// A token assembled by hand, for headers no honest library would produce.
fn hand_built(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"));
    format!(
        "{}.{}.{}",
        part(header),
        part(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A local identity provider.
struct Idp {
    state: Arc<IdpState>,
}

struct IdpState {
    issuer: String,
    base_url: String,
    /// The `issuer` the discovery document names (normally `issuer`).
    advertised_issuer: Mutex<String>,
    jwks: Mutex<Value>,
    /// When false, both endpoints answer 503.
    up: AtomicBool,
    jwks_delay_ms: AtomicU64,
    discovery_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

impl Idp {
    async fn start(keys: &[&TestKey]) -> Idp {
        Idp::start_with_issuer(keys, |addr| format!("http://{addr}")).await
    }

    async fn start_with_issuer(
        keys: &[&TestKey],
        issuer_at: impl FnOnce(SocketAddr) -> String,
    ) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("bound address");
        let issuer = issuer_at(addr);
        let state = Arc::new(IdpState {
            advertised_issuer: Mutex::new(issuer.clone()),
            issuer,
            base_url: format!("http://{addr}"),
            jwks: Mutex::new(jwks(keys)),
            up: AtomicBool::new(true),
            jwks_delay_ms: AtomicU64::new(0),
            discovery_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .route("/jwks", get(serve_jwks))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("IdP serves") });
        Idp { state }
    }

    fn issuer(&self) -> &str {
        &self.state.issuer
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(
            vec![self.issuer().to_owned()],
            AUDIENCE.to_owned(),
            reqwest::Client::new(),
        )
    }

    fn publish(&self, keys: &[&TestKey]) {
        *self.state.jwks.lock().expect("JWKS lock") = jwks(keys);
    }

    fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Claims of a valid token from this issuer, valid for five minutes from `now()`.
    fn claims(&self) -> Value {
        json!({
            "iss": self.issuer(),
            "sub": "user-1",
            "aud": AUDIENCE,
            "iat": at(0),
            "exp": at(300),
            "email": "ada@example.com",
            "email_verified": true,
            "name": "Ada Lovelace",
        })
    }
}

async fn serve_discovery(State(idp): State<Arc<IdpState>>) -> Response {
    idp.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if !idp.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let issuer = idp.advertised_issuer.lock().expect("issuer lock").clone();
    Json(json!({ "issuer": issuer, "jwks_uri": format!("{}/jwks", idp.base_url) })).into_response()
}

async fn serve_jwks(State(idp): State<Arc<IdpState>>) -> Response {
    idp.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(
        idp.jwks_delay_ms.load(Ordering::SeqCst),
    ))
    .await;
    if !idp.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = idp.jwks.lock().expect("JWKS lock").clone();
    Json(body).into_response()
}

async fn refusal(verifier: &Verifier, token: &str) -> TokenError {
    match verifier.verify(token, now()).await {
        Ok(claims) => panic!("the token should have been refused, but verified as {claims:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_valid_token_yields_its_claims() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;

    let claims = idp.verifier().verify(&key.sign(&idp.claims()), now()).await;

    assert_eq!(
        claims,
        Ok(Claims {
            issuer: idp.issuer().to_owned(),
            subject: "user-1".to_owned(),
            email: Some("ada@example.com".to_owned()),
            email_verified: true,
            name: Some("Ada Lovelace".to_owned()),
            grant: None,
        }),
        "a token signed with a published key, for our audience, within its validity, verifies"
    );
    assert_eq!(
        idp.discovery_fetches(),
        1,
        "the issuer is discovered on its first token"
    );
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "the key set is fetched on the first token"
    );
}

#[tokio::test]
async fn keys_are_cached_between_tokens() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();

    for _ in 0..3 {
        let token = key.sign(&idp.claims());
        verifier
            .verify(&token, now())
            .await
            .expect("a valid token verifies");
    }

    assert_eq!(
        (idp.discovery_fetches(), idp.jwks_fetches()),
        (1, 1),
        "known keys are served from the cache, not refetched per token"
    );
}

#[tokio::test]
async fn email_verified_reads_booleans_and_their_string_forms() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();
    let verified_as = |value: Value| {
        let mut claims = idp.claims();
        claims["email_verified"] = value;
        key.sign(&claims)
    };

    for (value, expected) in [
        (json!("true"), true),
        (json!("false"), false),
        (json!(false), false),
    ] {
        let claims = verifier.verify(&verified_as(value.clone()), now()).await;
        assert_eq!(
            claims.map(|c| c.email_verified),
            Ok(expected),
            "email_verified {value} reads as {expected} (some providers send strings)"
        );
    }

    let mut claims = idp.claims();
    claims
        .as_object_mut()
        .expect("an object")
        .remove("email_verified");
    claims.as_object_mut().expect("an object").remove("name");
    let claims = verifier
        .verify(&key.sign(&claims), now())
        .await
        .expect("optional claims");
    assert!(
        !claims.email_verified,
        "an email is unverified unless the token says otherwise"
    );
    assert_eq!(claims.name, None, "name is optional");

    let err = refusal(&verifier, &verified_as(json!("yes"))).await;
    assert_eq!(
        err,
        TokenError::InvalidClaim("email_verified"),
        "an email_verified that is neither a boolean nor \"true\"/\"false\" is not guessed at"
    );
    assert_eq!(err.code().as_str(), "token_invalid_claim");
}

#[tokio::test]
async fn expiry_allows_sixty_seconds_of_clock_skew() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();
    let expiring = |exp: i64| {
        let mut claims = idp.claims();
        claims["exp"] = json!(exp);
        key.sign(&claims)
    };

    let recent = verifier.verify(&expiring(at(-59)), now()).await;
    assert!(
        recent.is_ok(),
        "a token expired 59 s ago is within the leeway: {recent:?}"
    );

    let err = refusal(&verifier, &expiring(at(-61))).await;
    assert_eq!(
        err.code().as_str(),
        "token_expired",
        "61 s past exp is beyond the 60 s leeway: {err}"
    );

    let mut claims = idp.claims();
    claims.as_object_mut().expect("an object").remove("exp");
    let err = refusal(&verifier, &key.sign(&claims)).await;
    assert_eq!(
        err,
        TokenError::MissingClaim("exp"),
        "a token that never expires is refused"
    );
    assert_eq!(err.code().as_str(), "token_missing_claim");
}

#[tokio::test]
async fn a_token_is_refused_before_its_not_before_time() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();
    let starting = |nbf: i64| {
        let mut claims = idp.claims();
        claims["nbf"] = json!(nbf);
        key.sign(&claims)
    };

    let err = refusal(&verifier, &starting(at(120))).await;
    assert_eq!(
        err.code().as_str(),
        "token_not_yet_valid",
        "nbf 120 s ahead is beyond the leeway: {err}"
    );

    let skewed = verifier.verify(&starting(at(30)), now()).await;
    assert!(
        skewed.is_ok(),
        "nbf 30 s ahead is clock skew, within the leeway: {skewed:?}"
    );
}

#[tokio::test]
async fn a_token_from_an_unconfigured_issuer_is_refused_without_any_request() {
    let key = TestKey::generate("key-1");
    let trusted = Idp::start(&[&key]).await;
    let other = Idp::start(&[&key]).await;
    let mut claims = trusted.claims();
    claims["iss"] = json!(other.issuer());

    let err = refusal(&trusted.verifier(), &key.sign(&claims)).await;

    assert_eq!(
        err.code().as_str(),
        "token_unknown_issuer",
        "only configured issuers are trusted: {err}"
    );
    let requests = |idp: &Idp| idp.discovery_fetches() + idp.jwks_fetches();
    assert_eq!(
        (requests(&trusted), requests(&other)),
        (0, 0),
        "an untrusted iss must not make the server contact anyone, least of all that issuer"
    );
}

#[tokio::test]
async fn the_audience_must_name_this_server() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();
    let for_audience = |aud: Value| {
        let mut claims = idp.claims();
        claims["aud"] = aud;
        key.sign(&claims)
    };

    let err = refusal(&verifier, &for_audience(json!("another-api"))).await;
    assert_eq!(
        err.code().as_str(),
        "token_wrong_audience",
        "a token for another API is refused: {err}"
    );

    let err = refusal(&verifier, &for_audience(json!(["another-api", "billing"]))).await;
    assert_eq!(
        err.code().as_str(),
        "token_wrong_audience",
        "no listed audience is ours: {err}"
    );

    let shared = verifier
        .verify(&for_audience(json!(["another-api", AUDIENCE])), now())
        .await;
    assert!(
        shared.is_ok(),
        "a token whose aud array includes ours verifies: {shared:?}"
    );

    let mut claims = idp.claims();
    claims.as_object_mut().expect("an object").remove("aud");
    let err = refusal(&verifier, &key.sign(&claims)).await;
    assert_eq!(
        err,
        TokenError::MissingClaim("aud"),
        "a token for no audience is for no one"
    );
}

#[tokio::test]
async fn a_token_without_a_subject_is_refused() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let mut claims = idp.claims();
    claims.as_object_mut().expect("an object").remove("sub");

    let err = refusal(&idp.verifier(), &key.sign(&claims)).await;

    assert_eq!(
        err,
        TokenError::MissingClaim("sub"),
        "users are identified by iss and sub"
    );
}

#[tokio::test]
async fn a_signature_by_another_key_under_a_published_kid_is_refused() {
    let published = TestKey::generate("key-1");
    let impostor = TestKey::generate("key-1");
    let idp = Idp::start(&[&published]).await;

    let err = refusal(&idp.verifier(), &impostor.sign(&idp.claims())).await;

    assert_eq!(
        err.code().as_str(),
        "token_bad_signature",
        "naming a published kid proves nothing; only the key's signature does: {err}"
    );
}

#[tokio::test]
async fn an_unsigned_token_is_refused() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let token = hand_built(&json!({ "alg": "none", "typ": "JWT" }), &idp.claims(), b"");

    let err = refusal(&idp.verifier(), &token).await;

    assert_eq!(
        err,
        TokenError::UnsupportedAlgorithm("none".into()),
        "alg none is never accepted"
    );
    assert_eq!(err.code().as_str(), "token_unsupported_algorithm");
    assert_eq!(
        idp.jwks_fetches(),
        0,
        "the algorithm is refused before any key is looked up"
    );
}

#[tokio::test]
async fn an_hmac_token_is_refused() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let secret = EncodingKey::from_secret(key.jwk["x"].as_str().expect("x").as_bytes());
    let token = jsonwebtoken::encode(&header, &idp.claims(), &secret).expect("signing succeeds");

    let err = refusal(&idp.verifier(), &token).await;

    assert_eq!(
        err,
        TokenError::UnsupportedAlgorithm("HS256".into()),
        "HMAC is refused: its secret would be public material (key confusion)"
    );
    assert_eq!(
        idp.jwks_fetches(),
        0,
        "the algorithm is refused before any key is looked up"
    );
}

#[tokio::test]
async fn a_token_whose_algorithm_does_not_fit_the_named_key_is_refused() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();

    for alg in ["RS256", "ES384", "EdDSA"] {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": key.kid });
        let token = hand_built(&header, &idp.claims(), &[7; 64]);
        let err = refusal(&verifier, &token).await;
        assert_eq!(
            err.code().as_str(),
            "token_algorithm_mismatch",
            "{alg} cannot be verified with a P-256 key published for ES256: {err}"
        );
    }
}

#[tokio::test]
async fn a_token_without_kid_needs_an_unambiguous_key_set() {
    let key = TestKey::generate("key-1");
    let other = TestKey::generate("key-2");
    let idp = Idp::start(&[&key]).await;
    let token = key.sign_as(None, &idp.claims());

    let single = idp.verifier().verify(&token, now()).await;
    assert!(
        single.is_ok(),
        "with a single published key, a token need not name it: {single:?}"
    );

    idp.publish(&[&key, &other]);
    let err = refusal(&idp.verifier(), &token).await;
    assert_eq!(
        err.code().as_str(),
        "token_unknown_key",
        "with two keys, an unnamed one is ambiguous: {err}"
    );
}

#[tokio::test]
async fn an_unknown_kid_is_refused_and_refetched_at_most_once_per_interval() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();
    let token = key.sign_as(Some("no-such-key"), &idp.claims());

    let err = refusal(&verifier, &token).await;
    assert_eq!(
        err.code().as_str(),
        "token_unknown_key",
        "a kid the issuer does not publish: {err}"
    );
    let err = refusal(&verifier, &token).await;
    assert_eq!(
        err.code().as_str(),
        "token_unknown_key",
        "still unknown: {err}"
    );

    assert_eq!(
        idp.jwks_fetches(),
        1,
        "within the refetch interval an unknown kid is refused from the cache, \
         so made-up kids cannot make the server flood the issuer"
    );
}

#[tokio::test]
async fn a_rotated_key_verifies_after_one_refetch() {
    let interval = Duration::from_secs(2);
    let old = TestKey::generate("key-1");
    let new = TestKey::generate("key-2");
    let idp = Idp::start(&[&old]).await;
    let verifier = idp.verifier().with_refetch_interval(interval);
    verifier
        .verify(&old.sign(&idp.claims()), now())
        .await
        .expect("the old key verifies");
    assert_eq!(idp.jwks_fetches(), 1);

    idp.publish(&[&new]);
    // The first fetch counts: let the refetch interval pass so the rotation may be picked up.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let rotated = verifier.verify(&new.sign(&idp.claims()), now()).await;
    assert!(
        rotated.is_ok(),
        "a token signed with the new key verifies: {rotated:?}"
    );
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "the new kid triggers exactly one refetch"
    );

    let err = refusal(&verifier, &old.sign(&idp.claims())).await;
    assert_eq!(
        err.code().as_str(),
        "token_unknown_key",
        "the removed key no longer verifies: {err}"
    );
    let err = refusal(
        &verifier,
        &new.sign_as(Some("random-kid-4f2a"), &idp.claims()),
    )
    .await;
    assert_eq!(
        err.code().as_str(),
        "token_unknown_key",
        "a made-up kid is unknown: {err}"
    );
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "right after a refetch, unknown kids are refused without fetching again"
    );
    assert_eq!(
        idp.discovery_fetches(),
        1,
        "the JWKS address is discovered once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tokens_with_a_new_kid_cause_a_single_fetch() {
    let old = TestKey::generate("key-1");
    let new = TestKey::generate("key-2");
    let idp = Idp::start(&[&old]).await;
    // No rate limit, so that only single-flight can keep the fetches down to one.
    let verifier = idp.verifier().with_refetch_interval(Duration::ZERO);
    verifier
        .verify(&old.sign(&idp.claims()), now())
        .await
        .expect("the old key verifies");
    idp.publish(&[&old, &new]);
    // A slow key set makes every verification below arrive while the fetch is in flight.
    idp.state.jwks_delay_ms.store(200, Ordering::SeqCst);

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), new.sign(&idp.claims()));
            tokio::spawn(async move { verifier.verify(&token, now()).await })
        })
        .collect();
    for task in tasks {
        let verified = task.await.expect("the task completes");
        assert!(
            verified.is_ok(),
            "every token with the new key verifies: {verified:?}"
        );
    }

    assert_eq!(
        idp.jwks_fetches(),
        2,
        "one initial fetch, then one refetch shared by all 16 concurrent verifications"
    );
}

#[tokio::test]
async fn cached_keys_older_than_the_maximum_age_are_refetched() {
    let key = TestKey::generate("key-1");
    let other = TestKey::generate("key-2");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp
        .verifier()
        .with_refetch_interval(Duration::ZERO)
        .with_max_key_age(Duration::ZERO);
    let token = key.sign(&idp.claims());
    verifier
        .verify(&token, now())
        .await
        .expect("the key verifies");

    idp.set_up(false);
    let stale = verifier.verify(&token, now()).await;
    assert!(
        stale.is_ok(),
        "while the issuer is down, cached keys keep serving: {stale:?}"
    );
    assert_eq!(idp.jwks_fetches(), 2, "an aged key set is refetched");

    idp.set_up(true);
    idp.publish(&[&other]);
    let err = refusal(&verifier, &token).await;
    assert_eq!(
        err.code().as_str(),
        "token_unknown_key",
        "once refetched, a key the issuer withdrew (e.g. compromised) no longer verifies: {err}"
    );
}

#[tokio::test]
async fn an_unreachable_issuer_is_reported_as_such_and_not_hammered() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    idp.set_up(false);
    let verifier = idp.verifier();
    let token = key.sign(&idp.claims());

    for _ in 0..2 {
        let err = refusal(&verifier, &token).await;
        assert_eq!(
            err.code().as_str(),
            "issuer_unreachable",
            "the issuer answers 503: {err}"
        );
        assert!(
            err.is_issuer_fault(),
            "the token may be fine; the server cannot check it"
        );
    }
    assert_eq!(
        idp.discovery_fetches(),
        1,
        "failed fetches are rate-limited too: a down issuer is retried once per interval"
    );
}

#[tokio::test]
async fn verification_recovers_when_the_issuer_comes_back() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    idp.set_up(false);
    let verifier = idp.verifier().with_refetch_interval(Duration::ZERO);
    let token = key.sign(&idp.claims());

    let err = refusal(&verifier, &token).await;
    assert_eq!(
        err.code().as_str(),
        "issuer_unreachable",
        "the issuer is down at first: {err}"
    );

    idp.set_up(true);
    let recovered = verifier.verify(&token, now()).await;
    assert!(
        recovered.is_ok(),
        "keys are fetched lazily, so a later start is fine: {recovered:?}"
    );
}

#[tokio::test]
async fn an_issuer_that_is_not_listening_is_unreachable() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let issuer = format!("http://{}", closed.local_addr().expect("bound address"));
    drop(closed);
    let key = TestKey::generate("key-1");
    let token =
        key.sign(&json!({ "iss": issuer, "sub": "user-1", "aud": AUDIENCE, "exp": at(300) }));
    let verifier = Verifier::new(vec![issuer], AUDIENCE.to_owned(), reqwest::Client::new());

    let err = refusal(&verifier, &token).await;
    assert_eq!(
        err.code().as_str(),
        "issuer_unreachable",
        "nothing listens at the issuer: {err}"
    );
    let err = refusal(&verifier, &token).await;
    assert_eq!(
        err.code().as_str(),
        "issuer_unreachable",
        "the failure is remembered: {err}"
    );
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    *idp.state.advertised_issuer.lock().expect("issuer lock") = "https://evil.example".into();

    let err = refusal(&idp.verifier(), &key.sign(&idp.claims())).await;

    assert_eq!(
        err.code().as_str(),
        "issuer_misconfigured",
        "OIDC discovery requires the document to name the issuer it was fetched for: {err}"
    );
    assert_eq!(
        idp.jwks_fetches(),
        0,
        "keys of a mismatched issuer are never fetched"
    );
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_is_discovered_without_a_double_slash() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start_with_issuer(&[&key], |addr| format!("http://{addr}/")).await;
    let verifier = idp.verifier();
    assert_eq!(
        verifier.issuers(),
        [idp.issuer().to_owned()],
        "issuers are kept as configured"
    );

    let claims = verifier.verify(&key.sign(&idp.claims()), now()).await;

    assert_eq!(
        claims.map(|c| c.issuer),
        Ok(idp.issuer().to_owned()),
        "{}/.well-known/openid-configuration is found and iss matches exactly",
        idp.issuer().trim_end_matches('/')
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let key = TestKey::generate("key-1");
    let idp = Idp::start(&[&key]).await;
    let verifier = idp.verifier();

    for token in ["", "not-a-jwt", "a.b.c", "a.b.c.d.e"] {
        let err = refusal(&verifier, token).await;
        assert_eq!(
            err.code().as_str(),
            "token_malformed",
            "{token:?} is not a compact JWS: {err}"
        );
    }
}
