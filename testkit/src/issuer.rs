//! A token issuer on loopback: OIDC discovery and a key set, and ES256 access tokens signed
//! for any subject, without sign-in pages. Tests and benchmarks that need users, not sign-in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

use crate::AUDIENCE;

/// An OIDC issuer serving discovery and a JWKS on 127.0.0.1, signing ES256 tokens.
pub struct Issuer {
    pub url: String,
    key: EncodingKey,
    kid: String,
}

impl Issuer {
    pub async fn start() -> Issuer {
        let signing = SigningKey::random(&mut rand::rngs::OsRng);
        let pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 encoding of a fresh key");
        let point = signing.verifying_key().to_encoded_point(false);
        let kid = format!("test-{}", uuid::Uuid::now_v7().simple());
        let jwks = json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        }]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("issuer address"));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Issuer {
            url,
            key: EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC key"),
            kid,
        }
    }

    /// A valid access token for `subject`, with the given extra claims merged in.
    pub fn token_with(&self, subject: &str, extra: Value) -> String {
        let now = Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.url, "sub": subject, "aud": AUDIENCE,
            "iat": now, "exp": now + 600,
            "email": format!("{subject}@example.com"), "email_verified": true,
            "name": subject,
        });
        if let (Some(c), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            c.extend(extra);
        }
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing a test token")
    }

    pub fn token(&self, subject: &str) -> String {
        self.token_with(subject, json!({}))
    }

    /// A token for `subject` valid for `seconds` from now (the default lasts ten minutes).
    pub fn token_for(&self, subject: &str, seconds: i64) -> String {
        let exp = Utc::now().timestamp() + seconds;
        self.token_with(subject, json!({ "exp": exp }))
    }
}
