//! Sign-in end to end: real tokens from a certified OpenID provider, used against the API.
//!
//! The provider is the npm package `oidc-provider` ([`OidcProvider`], the test kit's), on a free
//! loopback port with keys generated at start. The test signs in the way the desktop app does:
//! the authorization code flow with PKCE (S256), `state` and `nonce`, through the provider's
//! login and consent pages, then the code exchange at the token endpoint. Nothing about the
//! tokens is faked, so the server's verifier meets what a real identity provider issues: its
//! discovery document, its key set (one RSA and one EC key), `at+jwt` access tokens.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tallydesk_testkit::oidc::{
    BrowserClient, Form, Landing, OidcProvider, jwt_part, jwt_payload, random_token,
    tamper_signature,
};
use tallydesk_testkit::{AUDIENCE, TestApp};

const CLIENT_ID: &str = "tallydesk-desktop";
const REDIRECT_URI: &str = "http://127.0.0.1/callback";

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn tokens_from_a_certified_provider_sign_in_to_the_api(pool: PgPool) {
    let provider = OidcProvider::start().await;
    let app = TestApp::trusting(pool, std::slice::from_ref(&provider.issuer), AUDIENCE).await;
    let desktop = DesktopClient::new(&provider.issuer).await;
    let tokens = desktop.sign_in("ana").await;

    let access = tokens["access_token"].as_str().expect("an access token");
    // The provider publishes an RSA and an EC key; the server must pick the one named by `kid`.
    assert_eq!(
        jwt_part(access, 0)["alg"],
        "ES256",
        "access tokens use the EC key"
    );
    let claims = jwt_payload(access);
    assert_eq!(
        claims["aud"], AUDIENCE,
        "the access token is for the API: {claims}"
    );
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert_eq!(
        claims["email"], "ana@example.com",
        "the provider puts the email in: {claims}"
    );

    let me = app
        .call(Method::GET, "/api/v1/me", Some(access), None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["user"]["email"], "ana@example.com");
    let memberships = me["memberships"].as_array().expect("memberships");
    assert_eq!(
        memberships.len(),
        1,
        "the first user claims the installation: {me}"
    );
    assert_eq!(memberships[0]["tenant_name"], "Default");
    assert_eq!(memberships[0]["role"], "admin");
    let tenant = memberships[0]["tenant_id"].as_str().expect("tenant id");

    let ticket = app
        .call(
            Method::POST,
            "/api/v1/tickets",
            Some(access),
            Some(tenant),
            Some(json!({ "title": "Printer offline", "description": "since this morning" })),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        ticket["requester_id"], me["user"]["id"],
        "the ticket is the signed-in user's"
    );

    let tampered = tamper_signature(access);
    let reply = app
        .call(Method::GET, "/api/v1/me", Some(&tampered), None, None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.code(), "token_bad_signature");

    // Signed by the same provider with a key it publishes, but meant for the desktop app.
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    assert_eq!(
        jwt_part(id_token, 0)["alg"],
        "RS256",
        "ID tokens use the RSA key"
    );
    assert_eq!(jwt_payload(id_token)["aud"], CLIENT_ID);
    let reply = app
        .call(Method::GET, "/api/v1/me", Some(id_token), None, None)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "an ID token is no access token: {}",
        reply.body
    );
    assert_eq!(reply.code(), "token_wrong_audience");

    // The desktop app stays signed in by refreshing; the fresh token is the same user's.
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token (offline_access)");
    let refreshed = desktop.refresh(refresh).await;
    let access = refreshed["access_token"]
        .as_str()
        .expect("a refreshed access token");
    assert_eq!(
        jwt_payload(access)["aud"],
        AUDIENCE,
        "a refresh keeps the audience"
    );
    let again = app
        .call(Method::GET, "/api/v1/me", Some(access), None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["user"]["id"], me["user"]["id"]);
}

/// The desktop app's side of the flow, in a browser with a cookie jar, following redirects by
/// hand so the one to the app's redirect URI is caught rather than connected to.
struct DesktopClient {
    browser: BrowserClient,
    authorization_endpoint: Url,
    token_endpoint: Url,
    issuer: String,
}

impl DesktopClient {
    async fn new(issuer: &str) -> DesktopClient {
        let browser = BrowserClient::new();
        let discovery: Value = browser
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("discovery document")
            .json()
            .await
            .expect("discovery is JSON");
        let endpoint = |name: &str| {
            let url = discovery[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {discovery}"));
            Url::parse(url).expect("an absolute endpoint URL")
        };
        DesktopClient {
            authorization_endpoint: endpoint("authorization_endpoint"),
            token_endpoint: endpoint("token_endpoint"),
            issuer: issuer.to_owned(),
            browser,
        }
    }

    /// Signs in as `login` and returns the token response.
    async fn sign_in(&self, login: &str) -> Value {
        let verifier = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_token();
        let nonce = random_token();
        let mut authorize = self.authorization_endpoint.clone();
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", "openid email profile offline_access")
            // Offline access (a refresh token) needs explicit consent.
            .append_pair("prompt", "consent")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");

        let browser = &self.browser;
        let mut landing = browser
            .follow(browser.http.get(authorize), REDIRECT_URI)
            .await;
        let mut prompts = Vec::new();
        let callback = loop {
            match landing {
                Landing::Back(url) => break url,
                Landing::Page { url, html } => {
                    assert!(
                        prompts.len() < 4,
                        "the provider keeps asking: {prompts:?}, now {url}:\n{html}"
                    );
                    let mut form = Form::parse(&html, &url);
                    let prompt = form.value("prompt").unwrap_or_default().to_owned();
                    if prompt == "login" {
                        form.set("login", login);
                        form.set("password", "any password");
                    }
                    prompts.push(prompt);
                    landing = browser.submit(form, REDIRECT_URI).await;
                }
            }
        };
        assert_eq!(
            prompts,
            ["login", "consent"],
            "the provider asked for sign-in, then consent"
        );

        let param = |name: &str| {
            callback
                .query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        if let Some(error) = param("error") {
            panic!(
                "the provider refused: {error}: {:?}",
                param("error_description")
            );
        }
        assert_eq!(
            param("state").as_deref(),
            Some(state.as_str()),
            "state comes back unchanged"
        );
        if let Some(iss) = param("iss") {
            assert_eq!(iss, self.issuer, "RFC 9207: the response names its issuer");
        }
        let code = param("code").expect("an authorization code");

        let tokens = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", CLIENT_ID),
                ("code_verifier", &verifier),
            ])
            .await;
        let id_token = tokens["id_token"]
            .as_str()
            .expect("an ID token (scope openid)");
        assert_eq!(
            jwt_payload(id_token)["nonce"],
            nonce.as_str(),
            "the ID token answers this request"
        );
        tokens
    }

    async fn refresh(&self, refresh_token: &str) -> Value {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Value {
        let response = self
            .browser
            .http
            .post(self.token_endpoint.clone())
            .form(form)
            .send()
            .await
            .expect("token endpoint");
        let status = response.status();
        let body: Value = response.json().await.expect("token response is JSON");
        assert!(
            status.is_success(),
            "token endpoint answered {status}: {body}"
        );
        assert_eq!(body["token_type"], "Bearer");
        body
    }
}
