//! Sign-in end to end: real tokens from a certified OpenID provider, used against the API.
//!
//! The provider is the npm package `oidc-provider`, run by `tests/oidc/provider.mjs` on a free
//! loopback port with keys generated at start. The test signs in the way the desktop app does:
//! the authorization code flow with PKCE (S256), `state` and `nonce`, through the provider's
//! login and consent pages, then the code exchange at the token endpoint. Nothing about the
//! tokens is faked, so the server's verifier meets what a real identity provider issues: its
//! discovery document, its key set (one RSA and one EC key), `at+jwt` access tokens.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::support::TestApp;

const CLIENT_ID: &str = "tallydesk-desktop";
const REDIRECT_URI: &str = "http://127.0.0.1/callback";
const AUDIENCE: &str = "tallydesk-api";

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

/// `tests/oidc/provider.mjs` running under node; killed when dropped.
struct OidcProvider {
    issuer: String,
    /// The provider exits when its stdin closes, even if this process dies without killing it.
    _stdin: ChildStdin,
    _child: Child,
    /// What the provider wrote to stderr, shown when a test fails.
    log: Arc<Mutex<String>>,
}

impl OidcProvider {
    async fn start() -> OidcProvider {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the OIDC test provider's npm packages are missing in {}: run scripts/setup (npm ci in server/tests/oidc)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "starting `node provider.mjs` (is Node.js installed? scripts/setup installs it)",
            );
        let stdin = child.stdin.take().expect("piped stdin");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), stdout.next_line()).await;
        let issuer = match &first {
            Ok(Ok(Some(line))) => serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["issuer"].as_str().map(str::to_owned)),
            _ => None,
        };
        let Some(issuer) = issuer else {
            // Give stderr a moment to arrive, so the message says why.
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "the OIDC provider did not announce its issuer ({first:?}); its stderr:\n{}",
                log.lock().unwrap_or_else(|e| e.into_inner())
            );
        };
        OidcProvider {
            issuer,
            _stdin: stdin,
            _child: child,
            log,
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "OIDC provider stderr:\n{}",
                self.log.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    }
}

/// The desktop app's side of the flow, with a browser's cookie jar, following redirects by hand
/// so the one to the app's redirect URI is caught rather than connected to.
struct DesktopClient {
    http: reqwest::Client,
    authorization_endpoint: Url,
    token_endpoint: Url,
    issuer: String,
}

/// Where following redirects ends: a page to fill in, or the redirect back to the app.
enum Landing {
    Page { url: Url, html: String },
    Callback(Url),
}

impl DesktopClient {
    async fn new(issuer: &str) -> DesktopClient {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        let discovery: Value = http
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
            http,
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

        let mut landing = self.follow(self.http.get(authorize)).await;
        let mut prompts = Vec::new();
        let callback = loop {
            match landing {
                Landing::Callback(url) => break url,
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
                    landing = self
                        .follow(self.http.post(form.action).form(&form.fields))
                        .await;
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

    /// Sends `request`, then follows redirects (GET, cookies kept) until a page or the callback.
    async fn follow(&self, mut request: reqwest::RequestBuilder) -> Landing {
        for _ in 0..10 {
            let response = request.send().await.expect("provider request");
            let url = response.url().clone();
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .expect("a redirect has a Location");
                let next = url.join(location).expect("a valid Location");
                if next.as_str().starts_with(REDIRECT_URI) {
                    return Landing::Callback(next);
                }
                request = self.http.get(next);
                continue;
            }
            let html = response.text().await.expect("page body");
            assert!(status.is_success(), "{url} answered {status}:\n{html}");
            return Landing::Page { url, html };
        }
        panic!("too many redirects");
    }
}

/// The first HTML form of a page: where it posts, and its fields with their initial values.
pub(crate) struct Form {
    pub(crate) action: Url,
    pub(crate) fields: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn parse(html: &str, page: &Url) -> Form {
        let start = html
            .find("<form")
            .unwrap_or_else(|| panic!("no form on {page}:\n{html}"));
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |end| start + end);
        let form = &html[start..end];
        let tag = |at: usize| &form[at..form[at..].find('>').map_or(form.len(), |end| at + end)];
        let action = attribute(tag(0), "action").unwrap_or_default();
        let action = page.join(&action).expect("a valid form action");
        let fields = form
            .match_indices("<input")
            .filter_map(|(at, _)| {
                let input = tag(at);
                let name = attribute(input, "name")?;
                Some((name, attribute(input, "value").unwrap_or_default()))
            })
            .collect();
        Form { action, fields }
    }

    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(key, _)| key == name) {
            Some(field) => field.1 = value.to_owned(),
            None => panic!("the form has no field {name:?}: {:?}", self.fields),
        }
    }
}

/// A double-quoted attribute of an HTML tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// 32 random bytes, base64url: a PKCE verifier, a state, a nonce.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The claims of a JWT, unverified (the server does the verifying).
pub(crate) fn jwt_payload(token: &str) -> Value {
    jwt_part(token, 1)
}

/// Part `index` of a signed JWT (0: header, 1: claims), decoded.
pub(crate) fn jwt_part(token: &str, index: usize) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a signed JWT has three parts: {token}");
    let part = URL_SAFE_NO_PAD.decode(parts[index]).expect("base64url");
    serde_json::from_slice(&part).expect("a JSON object")
}

/// `token` with the first byte of its signature changed.
pub(crate) fn tamper_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    let mut signature = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    signature[0] ^= 0x01;
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}
