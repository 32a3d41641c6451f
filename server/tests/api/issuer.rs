//! The built-in OIDC issuer, tested the way a certification suite would: over real HTTP, with
//! a browser-like client (cookies kept, redirects followed by hand) filling in its login form,
//! and the tokens used against the API of the same server.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use reqwest::Url;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tallydesk_server::Clock;
use tallydesk_server::issuer::password::Password;
use tallydesk_server::issuer::sweep;
use tallydesk_server::issuer::throttle::Limits;
use tallydesk_shared::ticket::Email;

use tallydesk_testkit::oidc::{
    Answer, BrowserClient, Form, jwt_part, jwt_payload, random_token, tamper_signature,
};
use tallydesk_testkit::{AUDIENCE, Served, TestApp, TestClock};

pub const CLIENT_ID: &str = "tallydesk-desktop";
pub const REDIRECT_URI: &str = "http://127.0.0.1:43210/callback";
pub const PASSWORD: &str = "correct horse battery";

/// A server with the built-in issuer, its URL, and a first account (admin of "Default").
pub struct Setup {
    pub app: TestApp,
    /// Keeps the server running.
    _served: Served,
    pub issuer: String,
}

impl Setup {
    pub async fn new(pool: PgPool) -> Setup {
        Setup::with(pool, Clock::system(), Limits::default()).await
    }

    pub async fn with(pool: PgPool, clock: Clock, limits: Limits) -> Setup {
        let (app, served) = TestApp::with_builtin_issuer(pool, clock, limits).await;
        let issuer = served.url.clone();
        let setup = Setup {
            app,
            _served: served,
            issuer,
        };
        setup.account("ana@example.com", "Ana").await;
        setup
    }

    /// Makes (or resets) an admin account of "Default" with [`PASSWORD`].
    pub async fn account(&self, email: &str, name: &str) {
        tallydesk_server::admin::create_admin(
            &self.app.app_pool,
            &self.issuer,
            &Email::parse(email).expect("an email"),
            Some(name),
            &Password::parse("password", PASSWORD, email).expect("a good password"),
            self.app.state.clock.now(),
        )
        .await
        .expect("create-admin");
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.issuer)
    }

    pub async fn me(&self, access: &str) -> tallydesk_testkit::Reply {
        self.app
            .call(Method::GET, "/api/v1/me", Some(access), None, None)
            .await
    }
}

/// One authorization request's secrets.
pub struct Request {
    pub verifier: String,
    pub state: String,
    pub nonce: String,
}

impl Request {
    pub fn new() -> Request {
        Request {
            verifier: random_token(),
            state: random_token(),
            nonce: random_token(),
        }
    }

    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

pub fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A browser (cookie jar, no automatic redirects) plus the desktop app's token calls.
pub struct Browser {
    pub http: reqwest::Client,
    pub issuer: String,
}

impl Browser {
    pub fn new(issuer: &str) -> Browser {
        Browser {
            http: BrowserClient::new().http,
            issuer: issuer.to_owned(),
        }
    }

    pub fn authorize_url(&self, request: &Request, changes: &[(&str, Option<&str>)]) -> Url {
        let challenge = request.challenge();
        let mut params: Vec<(&str, Option<&str>)> = vec![
            ("response_type", Some("code")),
            ("client_id", Some(CLIENT_ID)),
            ("redirect_uri", Some(REDIRECT_URI)),
            ("scope", Some("openid email profile offline_access")),
            ("state", Some(&request.state)),
            ("nonce", Some(&request.nonce)),
            ("code_challenge", Some(&challenge)),
            ("code_challenge_method", Some("S256")),
        ];
        for (name, value) in changes {
            match params.iter_mut().find(|(n, _)| n == name) {
                Some(param) => param.1 = *value,
                None => params.push((name, *value)),
            }
        }
        let mut url = Url::parse(&format!("{}/oidc/authorize", self.issuer)).expect("URL");
        {
            let mut q = url.query_pairs_mut();
            for (name, value) in params {
                if let Some(value) = value {
                    q.append_pair(name, value);
                }
            }
        }
        url
    }

    pub async fn land(&self, request: reqwest::RequestBuilder) -> Answer {
        Answer::of(request).await
    }

    pub async fn authorize(&self, request: &Request, changes: &[(&str, Option<&str>)]) -> Answer {
        self.land(self.http.get(self.authorize_url(request, changes)))
            .await
    }

    /// Fills in the sign-in form on `page` and submits it.
    pub async fn submit_login(&self, page: (Url, String), email: &str, password: &str) -> Answer {
        let (url, html) = page;
        let mut form = Form::parse(&html, &url);
        form.set("email", email);
        form.set("password", password);
        self.land(self.http.post(form.action).form(&form.fields))
            .await
    }

    /// The whole front channel: authorize, sign in, and the code from the callback.
    pub async fn code(&self, request: &Request, email: &str, password: &str) -> String {
        let landing = self.authorize(request, &[]).await;
        let callback = match landing {
            Answer::Redirect(to) => to,
            Answer::Page { status, url, html } => {
                assert_eq!(status, 200, "the login page: {html}");
                self.submit_login((url, html), email, password)
                    .await
                    .redirect()
            }
        };
        assert!(
            callback.as_str().starts_with(REDIRECT_URI),
            "back to the app: {callback}"
        );
        let params = query(&callback);
        assert_eq!(params.get("state"), Some(&request.state), "state echoed");
        assert_eq!(
            params.get("iss"),
            Some(&self.issuer),
            "RFC 9207: the response names its issuer"
        );
        params
            .get("code")
            .unwrap_or_else(|| panic!("a code in {callback}"))
            .clone()
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/oidc/token", self.issuer))
            .form(form)
            .send()
            .await
            .expect("token endpoint");
        let status = response.status();
        assert_eq!(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "token responses are never cached"
        );
        (
            status,
            response.json().await.expect("token responses are JSON"),
        )
    }

    pub async fn exchange(&self, request: &Request, code: &str) -> (reqwest::StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("code_verifier", &request.verifier),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> (reqwest::StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
        ])
        .await
    }

    /// Signs in and returns the token response.
    pub async fn sign_in(&self, email: &str, password: &str) -> Value {
        let request = Request::new();
        let code = self.code(&request, email, password).await;
        let (status, tokens) = self.exchange(&request, &code).await;
        assert_eq!(status, 200, "code exchange: {tokens}");
        assert_eq!(
            jwt_payload(tokens["id_token"].as_str().expect("an ID token"))["nonce"],
            request.nonce.as_str(),
            "the ID token answers this request"
        );
        tokens
    }
}

#[track_caller]
pub fn oauth_error(reply: &(reqwest::StatusCode, Value), status: u16, error: &str) {
    assert_eq!(
        (reply.0.as_u16(), reply.1["error"].as_str()),
        (status, Some(error)),
        "{}",
        reply.1
    );
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("an access token")
}

fn refresh(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("a refresh token")
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn discovery_and_jwks_describe_a_code_flow_provider_with_pkce(pool: PgPool) {
    let s = Setup::new(pool).await;
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{}/.well-known/openid-configuration", s.issuer))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        discovery["issuer"], s.issuer,
        "the issuer is the public URL exactly"
    );
    for (endpoint, path) in [
        ("authorization_endpoint", "/oidc/authorize"),
        ("token_endpoint", "/oidc/token"),
        ("jwks_uri", "/oidc/jwks"),
        ("end_session_endpoint", "/oidc/end_session"),
        ("revocation_endpoint", "/oidc/revoke"),
        ("userinfo_endpoint", "/oidc/userinfo"),
    ] {
        assert_eq!(discovery[endpoint], format!("{}{path}", s.issuer));
    }
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        discovery["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none"])
    );
    assert_eq!(
        discovery["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );

    let jwks: Value = http
        .get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "one current key: {jwks}");
    let key = &keys[0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &Value::from("EC"),
            &Value::from("P-256"),
            &Value::from("ES256"),
            &Value::from("sig")
        )
    );
    assert!(key["kid"].is_string() && key["x"].is_string() && key["y"].is_string());
    assert!(key.get("d").is_none(), "the private key is never published");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_code_flow_with_pkce_signs_in_to_the_api(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();

    let (status, url, html) = browser.authorize(&Request::new(), &[]).await.page();
    assert_eq!(status, 200);
    assert!(
        html.contains("<label for=\"email\">") && html.contains("<label for=\"password\">"),
        "an accessible login form: {html}"
    );
    assert!(url.as_str().starts_with(&s.issuer));

    let tokens = browser.sign_in("ana@example.com", PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    let access_token = access(&tokens);
    let header = jwt_part(access_token, 0);
    assert_eq!(header["typ"], "at+jwt", "RFC 9068 access token: {header}");
    assert_eq!(header["alg"], "ES256");
    let claims = jwt_payload(access_token);
    assert_eq!(claims["iss"], s.issuer);
    assert_eq!(claims["aud"], AUDIENCE, "for the API: {claims}");
    assert_eq!(claims["email"], "ana@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ana");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600,
        "ten minutes"
    );
    let id = jwt_payload(tokens["id_token"].as_str().expect("ID token"));
    assert_eq!(id["aud"], CLIENT_ID, "the ID token is for the app: {id}");
    assert_eq!(id["iss"], s.issuer);
    assert_eq!(id["sub"], claims["sub"]);
    assert_eq!(id["email"], "ana@example.com");
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access gives a refresh token"
    );

    let me = s.me(access_token).await.expect(StatusCode::OK);
    assert_eq!(me["user"]["email"], "ana@example.com");
    assert_eq!(me["memberships"][0]["tenant_name"], "Default");
    assert_eq!(me["memberships"][0]["role"], "admin");

    // The issuer session: the next request gets a code without the form…
    let request = Request::new();
    let landing = browser.authorize(&request, &[]).await.redirect();
    assert!(
        query(&landing).contains_key("code"),
        "signed in already: {landing}"
    );
    // …unless prompt=login asks for the password again.
    let (status, _, html) = browser
        .authorize(&Request::new(), &[("prompt", Some("login"))])
        .await
        .page();
    assert_eq!(status, 200);
    assert!(html.contains("name=\"password\""), "{html}");

    // The server verifies tamper-proofing itself: a changed signature is refused.
    let reply = s.me(&tamper_signature(access_token)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "token_bad_signature");
    let reply = s.me(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(
        reply.code(),
        "token_wrong_audience",
        "an ID token is no access token"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn wrong_password_says_so_without_telling_whether_the_account_exists(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let request = Request::new();
    let (_, url, html) = browser.authorize(&request, &[]).await.page();
    let (status, url, wrong) = browser
        .submit_login((url, html), "ana@example.com", "not the password")
        .await
        .page();
    assert_eq!(status, 200);
    assert!(wrong.contains("Wrong email or password."), "{wrong}");
    assert!(wrong.contains("role=\"alert\""), "announced: {wrong}");
    let (_, _, unknown) = browser
        .submit_login(
            (url.clone(), wrong.clone()),
            "nobody@example.com",
            "not the password",
        )
        .await
        .page();
    assert!(
        unknown.contains("Wrong email or password."),
        "the same words for an unknown account: {unknown}"
    );

    // The same form still works with the right password.
    let callback = browser
        .submit_login((url, unknown), "ana@example.com", PASSWORD)
        .await
        .redirect();
    assert!(query(&callback).contains_key("code"));
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn cancel_sends_access_denied_to_the_app(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let request = Request::new();
    let (_, url, html) = browser.authorize(&request, &[]).await.page();
    let mut form = Form::parse(&html, &url);
    form.fields.push(("action".into(), "cancel".into()));
    let callback = browser
        .land(browser.http.post(form.action).form(&form.fields))
        .await
        .redirect();
    let params = query(&callback);
    assert!(callback.as_str().starts_with(REDIRECT_URI));
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(params.get("state"), Some(&request.state));
    assert_eq!(params.get("iss"), Some(&s.issuer));
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_login_form_is_bound_to_the_browser_that_opened_it(pool: PgPool) {
    let s = Setup::new(pool).await;
    let (_, url, html) = s.browser().authorize(&Request::new(), &[]).await.page();
    // Another browser (no CSRF cookie) posts the same form.
    let other = s.browser();
    let (status, _, page) = other
        .submit_login((url, html), "ana@example.com", PASSWORD)
        .await
        .page();
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("expired"), "{page}");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn pkce_is_required_and_only_s256(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let request = Request::new();
    for (changes, why) in [
        (vec![("code_challenge", None)], "missing challenge"),
        (vec![("code_challenge_method", Some("plain"))], "plain"),
        (
            vec![("code_challenge_method", None)],
            "no method means plain",
        ),
    ] {
        let callback = browser.authorize(&request, &changes).await.redirect();
        let params = query(&callback);
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("invalid_request"),
            "{why}: {callback}"
        );
        assert_eq!(params.get("state"), Some(&request.state), "{why}");
        assert_eq!(params.get("iss"), Some(&s.issuer), "{why}");
    }

    // A code bound to a challenge needs its verifier.
    let code = browser.code(&request, "ana@example.com", PASSWORD).await;
    let missing = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
        ])
        .await;
    oauth_error(&missing, 400, "invalid_request");
    let wrong = Request::new();
    let mismatch = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("code_verifier", &wrong.verifier),
        ])
        .await;
    oauth_error(&mismatch, 400, "invalid_grant");
    // The challenge itself is no verifier (what `plain` would accept).
    let challenge = request.challenge();
    let plain = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("code_verifier", &challenge),
        ])
        .await;
    oauth_error(&plain, 400, "invalid_grant");
    let (status, tokens) = browser.exchange(&request, &code).await;
    assert_eq!(status, 200, "the right verifier still works: {tokens}");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_replayed_code_fails_and_revokes_what_it_gave(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let request = Request::new();
    let code = browser.code(&request, "ana@example.com", PASSWORD).await;
    let (status, tokens) = browser.exchange(&request, &code).await;
    assert_eq!(status, 200);
    s.me(access(&tokens)).await.expect(StatusCode::OK);

    let replay = browser.exchange(&request, &code).await;
    oauth_error(&replay, 400, "invalid_grant");

    let reply = s.me(access(&tokens)).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "token_revoked"),
        "the first exchange's access token is revoked: {}",
        reply.body
    );
    let refreshed = browser.refresh(refresh(&tokens)).await;
    oauth_error(&refreshed, 400, "invalid_grant");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn unknown_clients_and_foreign_redirects_get_a_page_never_a_redirect(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let request = Request::new();
    for changes in [
        vec![("client_id", Some("someone-else"))],
        vec![("client_id", None)],
        vec![("redirect_uri", Some("https://evil.example/callback"))],
        vec![("redirect_uri", Some("http://localhost:43210/callback"))],
        vec![("redirect_uri", Some("http://127.0.0.1:43210/elsewhere"))],
        vec![("redirect_uri", None)],
    ] {
        let (status, _, html) = browser.authorize(&request, &changes).await.page();
        assert_eq!(status, 400, "{changes:?}: {html}");
        assert!(html.contains("Cannot sign in"), "{html}");
    }
    // Any loopback port will do (RFC 8252 §7.3), IPv6 too.
    for redirect in ["http://127.0.0.1:1/callback", "http://[::1]:65000/callback"] {
        let (status, _, _) = browser
            .authorize(&request, &[("redirect_uri", Some(redirect))])
            .await
            .page();
        assert_eq!(status, 200, "{redirect} is a good redirect URI");
    }

    let code = browser.code(&request, "ana@example.com", PASSWORD).await;
    let other_redirect = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9999/callback"),
            ("client_id", CLIENT_ID),
            ("code_verifier", &request.verifier),
        ])
        .await;
    oauth_error(&other_redirect, 400, "invalid_grant");
    let unknown_client = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", "someone-else"),
            ("code_verifier", &request.verifier),
        ])
        .await;
    oauth_error(&unknown_client, 401, "invalid_client");
    let unsupported = browser
        .token(&[("grant_type", "password"), ("client_id", CLIENT_ID)])
        .await;
    oauth_error(&unsupported, 400, "unsupported_grant_type");
    let (status, _) = browser.exchange(&request, &code).await;
    assert_eq!(status, 200, "failed attempts did not use the code up");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_code_expires_after_a_minute(pool: PgPool) {
    let clock = TestClock::new();
    let s = Setup::with(pool, clock.clock(), Limits::default()).await;
    let browser = s.browser();
    let request = Request::new();
    let code = browser.code(&request, "ana@example.com", PASSWORD).await;
    clock.advance(Duration::seconds(61));
    let late = browser.exchange(&request, &code).await;
    oauth_error(&late, 400, "invalid_grant");
    assert!(
        late.1["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{}",
        late.1
    );

    let request = Request::new();
    let code = browser.code(&request, "ana@example.com", PASSWORD).await;
    clock.advance(Duration::seconds(59));
    let (status, tokens) = browser.exchange(&request, &code).await;
    assert_eq!(status, 200, "within the minute: {tokens}");
    s.me(access(&tokens)).await.expect(StatusCode::OK);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let tokens = browser.sign_in("ana@example.com", PASSWORD).await;
    let first = refresh(&tokens).to_owned();

    let (status, second) = browser.refresh(&first).await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = refresh(&second).to_owned();
    assert_ne!(
        second_refresh, first,
        "every use returns a new refresh token"
    );
    let me = s.me(access(&second)).await.expect(StatusCode::OK);
    assert_eq!(me["user"]["email"], "ana@example.com");

    // Someone replays the first refresh token: the whole family ends.
    let reuse = browser.refresh(&first).await;
    oauth_error(&reuse, 400, "invalid_grant");
    let after = browser.refresh(&second_refresh).await;
    oauth_error(&after, 400, "invalid_grant");
    let reply = s.me(access(&second)).await;
    assert_eq!(reply.code(), "token_revoked", "{}", reply.body);

    // A new sign-in is a new family, unaffected.
    let fresh = browser.sign_in("ana@example.com", PASSWORD).await;
    let (status, _) = browser.refresh(refresh(&fresh)).await;
    assert_eq!(status, 200);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn after_key_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let before = browser.sign_in("ana@example.com", PASSWORD).await;
    let old_kid = jwt_part(access(&before), 0)["kid"].clone();

    // A second server instance on the same database, with the old key loaded.
    let other = s.app.another_instance_with_builtin_issuer(&s.issuer).await;
    let issuer = s.app.state.issuer.clone().expect("the built-in issuer");
    let new_kid = issuer
        .keys()
        .rotate(s.app.state.clock.now())
        .await
        .expect("rotation");
    assert_ne!(Value::from(new_kid.clone()), old_kid);

    s.me(access(&before)).await.expect(StatusCode::OK);
    let (status, after) = browser.refresh(refresh(&before)).await;
    assert_eq!(status, 200);
    assert_eq!(jwt_part(access(&after), 0)["kid"], new_kid.as_str());
    s.me(access(&after)).await.expect(StatusCode::OK);

    let jwks: Value = reqwest::get(format!("{}/oidc/jwks", s.issuer))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    let kids: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(
        kids,
        [&Value::from(new_kid), &old_kid],
        "both keys are published, the new one first"
    );

    // The other instance meets the new key in a token and finds it in the database.
    other
        .call(Method::GET, "/api/v1/me", Some(access(&after)), None, None)
        .await
        .expect(StatusCode::OK);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn sign_in_attempts_are_limited_per_account_and_per_address(pool: PgPool) {
    let limits = Limits {
        per_account: 3,
        per_address: 6,
        window: Duration::minutes(15),
        ..Limits::default()
    };
    let clock = TestClock::new();
    let s = Setup::with(pool, clock.clock(), limits).await;
    let browser = s.browser();
    let (_, mut url, mut html) = browser.authorize(&Request::new(), &[]).await.page();
    for _ in 0..3 {
        let (status, u, h) = browser
            .submit_login((url, html), "ana@example.com", "wrong password!")
            .await
            .page();
        assert_eq!(status, 200);
        (url, html) = (u, h);
    }
    let (status, u, h) = browser
        .submit_login((url, html), "ana@example.com", PASSWORD)
        .await
        .page();
    assert_eq!(
        status, 429,
        "the fourth attempt is refused even with the right password: {h}"
    );
    assert!(
        h.contains("Too many sign-in attempts. Try again in 15 minutes."),
        "{h}"
    );
    (url, html) = (u, h);

    // The account's window ends; the address has used 4 of its 6.
    clock.advance(Duration::minutes(15));
    let (_, url2, html2) = browser.authorize(&Request::new(), &[]).await.page();
    let callback = browser
        .submit_login((url2, html2), "ana@example.com", PASSWORD)
        .await
        .redirect();
    assert!(query(&callback).contains_key("code"));
    drop((url, html));
    // One address trying many accounts is stopped too (its window began with the first
    // attempt above, so it starts afresh).
    let (_, mut url, mut html) = browser
        .authorize(&Request::new(), &[("prompt", Some("login"))])
        .await
        .page();
    let mut statuses = Vec::new();
    for n in 0..7 {
        let (status, u, h) = browser
            .submit_login(
                (url, html),
                &format!("guess{n}@example.com"),
                "wrong password!",
            )
            .await
            .page();
        statuses.push(status.as_u16());
        (url, html) = (u, h);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 200, 429],
        "6 attempts per address in a window, whichever accounts they name (the correct \
         password took its attempt back)"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn end_session_signs_out_and_revokes_the_sessions_tokens(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let tokens = browser.sign_in("ana@example.com", PASSWORD).await;
    let id_token = tokens["id_token"].as_str().unwrap();

    let bad = browser
        .land(browser.http.get(format!(
            "{}/oidc/end_session?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            s.issuer
        )))
        .await
        .page();
    assert_eq!(
        bad.0, 400,
        "never back to a non-loopback address: {}",
        bad.2
    );

    let state = random_token();
    let back = browser
        .land(browser.http.get(format!(
            "{}/oidc/end_session?id_token_hint={id_token}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A43210%2Fsigned-out&state={state}",
            s.issuer
        )))
        .await
        .redirect();
    assert!(
        back.as_str()
            .starts_with("http://127.0.0.1:43210/signed-out")
    );
    assert_eq!(query(&back).get("state"), Some(&state));

    let refreshed = browser.refresh(refresh(&tokens)).await;
    oauth_error(&refreshed, 400, "invalid_grant");
    assert_eq!(s.me(access(&tokens)).await.code(), "token_revoked");
    let (status, _, html) = browser.authorize(&Request::new(), &[]).await.page();
    assert_eq!(status, 200, "the issuer session ended: the form again");
    assert!(html.contains("name=\"password\""));

    // Without a redirect, a page says so.
    let (status, _, html) = browser
        .land(browser.http.get(format!("{}/oidc/end_session", s.issuer)))
        .await
        .page();
    assert_eq!(status, 200);
    assert!(html.contains("You are signed out"), "{html}");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn revocation_and_userinfo(pool: PgPool) {
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let tokens = browser.sign_in("ana@example.com", PASSWORD).await;
    let info: Value = browser
        .http
        .get(format!("{}/oidc/userinfo", s.issuer))
        .bearer_auth(access(&tokens))
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("JSON");
    assert_eq!(info["email"], "ana@example.com");
    assert_eq!(info["sub"], jwt_payload(access(&tokens))["sub"]);

    let response = browser
        .http
        .post(format!("{}/oidc/revoke", s.issuer))
        .form(&[("token", refresh(&tokens)), ("client_id", CLIENT_ID)])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    oauth_error(
        &browser.refresh(refresh(&tokens)).await,
        400,
        "invalid_grant",
    );
    assert_eq!(s.me(access(&tokens)).await.code(), "token_revoked");
    let response = browser
        .http
        .post(format!("{}/oidc/revoke", s.issuer))
        .form(&[("token", "not-a-token"), ("client_id", CLIENT_ID)])
        .send()
        .await
        .expect("revoke");
    assert_eq!(
        response.status(),
        200,
        "RFC 7009: unknown tokens answer 200"
    );
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn over_long_sign_in_inputs_are_refused_and_nothing_is_stored(pool: PgPool) {
    let s = Setup::new(pool.clone()).await;
    let browser = s.browser();
    let request = Request::new();
    let long = "a".repeat(3000);
    for name in ["state", "nonce", "login_hint"] {
        let callback = browser
            .authorize(&request, &[(name, Some(&long))])
            .await
            .redirect();
        assert_eq!(
            query(&callback).get("error").map(String::as_str),
            Some("invalid_request"),
            "an over-long {name} is bad input: {callback}"
        );
    }
    let long_redirect = format!("{REDIRECT_URI}#{long}");
    let (status, _, _) = browser
        .authorize(&request, &[("redirect_uri", Some(&long_redirect))])
        .await
        .page();
    assert_eq!(
        status, 400,
        "an over-long redirect_uri gets a page, never a redirect"
    );
    let callback = browser
        .authorize(&request, &[("code_challenge", Some(&long))])
        .await
        .redirect();
    assert_eq!(
        query(&callback).get("error").map(String::as_str),
        Some("invalid_request"),
        "an over-long code_challenge is bad input: {callback}"
    );
    assert_eq!(
        count(&pool, "issuer_interactions").await,
        0,
        "refused requests leave nothing waiting"
    );

    let page = browser.authorize(&request, &[]).await.page();
    let email = format!("{}@example.com", "a".repeat(300));
    let (status, _, html) = browser
        .submit_login((page.1, page.2), &email, "wrong password!")
        .await
        .page();
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("at most 254 characters"), "{html}");
    assert_eq!(
        count(&pool, "issuer_login_failures").await,
        0,
        "an over-long email is not counted, so it is not stored"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn waiting_sign_ins_are_capped_and_expired_ones_make_room(pool: PgPool) {
    let limits = Limits {
        max_interactions: 20,
        ..Limits::default()
    };
    let clock = TestClock::new();
    let s = Setup::with(pool.clone(), clock.clock(), limits).await;
    let browser = s.browser();
    let mut refused = 0;
    for _ in 0..200 {
        let request = Request::new();
        match browser.authorize(&request, &[]).await {
            Answer::Page { status, .. } => assert_eq!(status, 200, "a login page"),
            Answer::Redirect(to) => {
                let params = query(&to);
                assert_eq!(
                    params.get("error").map(String::as_str),
                    Some("temporarily_unavailable"),
                    "{to}"
                );
                assert_eq!(params.get("state"), Some(&request.state), "state echoed");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 180, "past the cap, new sign-ins are refused");
    assert_eq!(
        count(&pool, "issuer_interactions").await,
        20,
        "the table holds no more than the cap"
    );

    // Once the waiting ones expire, they make room for new ones.
    clock.advance(Duration::minutes(16));
    browser.authorize(&Request::new(), &[]).await.page();
    assert_eq!(
        count(&pool, "issuer_interactions").await,
        1,
        "the expired ones went to make room"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_sweep_drops_expired_rows_and_keeps_live_ones(pool: PgPool) {
    let clock = TestClock::new();
    let s = Setup::with(pool.clone(), clock.clock(), Limits::default()).await;
    let browser = s.browser();
    let (_, url, html) = browser.authorize(&Request::new(), &[]).await.page();
    browser
        .submit_login((url, html), "nobody@example.com", "wrong password!")
        .await
        .page();
    assert_eq!(count(&pool, "issuer_interactions").await, 1);
    assert_eq!(
        count(&pool, "issuer_login_failures").await,
        2,
        "account and address"
    );

    let swept = sweep::sweep(&pool, Limits::default(), clock.now())
        .await
        .expect("sweep");
    assert_eq!(swept, sweep::Swept::default(), "nothing expired yet");
    assert_eq!(
        count(&pool, "issuer_interactions").await,
        1,
        "live ones stay"
    );
    assert_eq!(
        count(&pool, "issuer_login_failures").await,
        2,
        "live ones stay"
    );

    clock.advance(Duration::minutes(16));
    // A newer interaction, still live.
    browser.authorize(&Request::new(), &[]).await.page();
    let swept = sweep::sweep(&pool, Limits::default(), clock.now())
        .await
        .expect("sweep");
    assert_eq!(swept.interactions, 1, "{swept:?}");
    assert_eq!(swept.login_failures, 2, "{swept:?}");
    assert_eq!(
        count(&pool, "issuer_interactions").await,
        1,
        "the live interaction stays"
    );
    assert_eq!(count(&pool, "issuer_login_failures").await, 0);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_throttled_address_adds_no_failure_records_for_the_accounts_it_names(pool: PgPool) {
    let limits = Limits {
        per_address: 3,
        ..Limits::default()
    };
    let s = Setup::with(pool.clone(), Clock::system(), limits).await;
    let browser = s.browser();
    let (_, mut url, mut html) = browser.authorize(&Request::new(), &[]).await.page();
    for n in 0..50 {
        let (_, u, h) = browser
            .submit_login(
                (url, html),
                &format!("guess{n}@example.com"),
                "wrong password!",
            )
            .await
            .page();
        (url, html) = (u, h);
    }
    assert_eq!(
        count(&pool, "issuer_login_failures").await,
        1 + 3,
        "one address row, and account rows only for the attempts the address was allowed"
    );
}
