//! What the sign-in tests run against: a real Tallydesk server in-process on a throwaway
//! Postgres database, the certified `oidc-provider` under node, the OS keychain (Secret
//! Service), and a "browser" that is an HTTP client filling in the provider's forms.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::Value;
use sqlx::PgPool;
use tallydesk_desktop_core::Clock;
use tallydesk_desktop_core::account::{Browser, Keychain, Setup};
use tallydesk_server::AppState;
use tallydesk_server::auth::jwt::Verifier;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The audience the provider puts in access tokens for the API.
pub const AUDIENCE: &str = "tallydesk-api";

/// A Tallydesk server on a loopback port, trusting `issuers`; serves until the test ends.
pub async fn start_server(owner: PgPool, issuers: Vec<String>) -> String {
    let options = (*owner.connect_options()).clone();
    let pool = tallydesk_server::db::app_pool(options, 8)
        .await
        .expect("the server's request pool");
    let verifier = Verifier::new(issuers, AUDIENCE.to_owned(), reqwest::Client::new());
    let state = AppState::new(pool, verifier, tallydesk_server::Clock::system());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the server");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, tallydesk_server::app(state))
            .await
            .expect("the server runs");
    });
    url
}

/// A Tallydesk server with its built-in issuer on (and no other), its public URL the loopback
/// address it serves on, and `email` its admin with `password`.
pub async fn start_builtin_server(owner: PgPool, email: &str, password: &str) -> String {
    use tallydesk_server::issuer::keys::KeyRing;
    use tallydesk_server::issuer::password::Password;
    let options = (*owner.connect_options()).clone();
    let pool = tallydesk_server::db::app_pool(options, 8)
        .await
        .expect("the server's request pool");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the server");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let clock = tallydesk_server::Clock::system();
    let keys = KeyRing::open(pool.clone(), clock.now())
        .await
        .expect("the issuer's signing keys");
    let verifier = Verifier::new(Vec::new(), AUDIENCE.to_owned(), reqwest::Client::new());
    let state = AppState::new(pool, verifier, clock.clone()).with_builtin_issuer(
        tallydesk_server::issuer::BuiltinIssuer::new(
            url.clone(),
            AUDIENCE.to_owned(),
            Arc::new(keys),
        ),
    );
    let email_parsed = tallydesk_shared::ticket::Email::parse(email).expect("an email");
    let password = Password::parse("password", password, email).expect("a strong password");
    tallydesk_server::admin::create_admin(
        &owner,
        &url,
        &email_parsed,
        Some("Ana"),
        &password,
        clock.now(),
    )
    .await
    .expect("the admin account is made");
    tokio::spawn(async move {
        axum::serve(listener, tallydesk_server::app(state))
            .await
            .expect("the server runs");
    });
    url
}

/// The keychain of the test session. The test scripts run the suite on a D-Bus session with
/// an unlocked gnome-keyring; without one, this fails saying so.
pub fn keychain() -> Keychain {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "DBUS_SESSION_BUS_ADDRESS is unset: the sign-in tests keep tokens in the real Secret \
         Service. Run them through scripts/test (dbus-run-session with an unlocked \
         gnome-keyring-daemon), or start one yourself."
    );
    Keychain::system()
}

/// A clock that tests move forward.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn clock(&self) -> Clock {
        let offset = self.0.clone();
        Clock::fixed(move || Utc::now() + TimeDelta::seconds(offset.load(Ordering::SeqCst)))
    }

    pub fn advance(&self, by: TimeDelta) {
        self.0.fetch_add(by.num_seconds(), Ordering::SeqCst);
    }
}

/// The account's outside parts for one test: this browser, the keychain, a movable clock.
pub fn setup(browser: &TestBrowser, clock: &TestClock) -> Setup {
    Setup {
        clock: clock.clock(),
        browser: browser.browser(),
        keychain: keychain(),
        sign_in_timeout: Duration::from_secs(30),
    }
}

/// What the browser does on the provider's sign-in page.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Signs in as this login name and consents.
    SignIn(String),
    /// Signs in as this login name, then brings back the answer with another `state`.
    TamperState(String),
    /// Presses the provider's Cancel.
    Deny,
    /// Signs in with an email and password (the server's built-in issuer).
    Password { email: String, password: String },
    /// Leaves the page open and does nothing.
    Ignore,
}

/// A browser driven by an HTTP client with a cookie jar, like a person's.
#[derive(Clone)]
pub struct TestBrowser {
    http: reqwest::Client,
    behaviour: Arc<Mutex<Behaviour>>,
    /// Every URL the app asked to open.
    pub opened: Arc<Mutex<Vec<String>>>,
    /// The pages the app's loopback listener answered with.
    pub pages: Arc<Mutex<Vec<String>>>,
}

impl TestBrowser {
    pub fn new(behaviour: Behaviour) -> TestBrowser {
        TestBrowser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
            behaviour: Arc::new(Mutex::new(behaviour)),
            opened: Arc::default(),
            pages: Arc::default(),
        }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn opened(&self) -> Vec<String> {
        self.opened.lock().unwrap().clone()
    }

    pub fn pages(&self) -> Vec<String> {
        self.pages.lock().unwrap().clone()
    }

    /// Waits (a bounded while) until the app's listener has answered `count` pages in all.
    pub async fn wait_for_pages(&self, count: usize) {
        for _ in 0..200 {
            if self.pages.lock().unwrap().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the app answered {:?}, not {count} pages", self.pages());
    }

    pub fn browser(&self) -> Browser {
        let me = self.clone();
        Browser::new(move |url| {
            me.opened.lock().unwrap().push(url.to_owned());
            let me = me.clone();
            let url = Url::parse(url).map_err(|e| e.to_string())?;
            tokio::spawn(async move { me.visit(url).await });
            Ok(())
        })
    }

    async fn visit(&self, url: Url) {
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(back) = param("post_logout_redirect_uri") {
            return self.sign_out(url.clone(), &back).await;
        }
        let back = param("redirect_uri").expect("an authorization request names its redirect URI");
        let behaviour = self.behaviour.lock().unwrap().clone();
        let login = match &behaviour {
            Behaviour::Ignore => return,
            Behaviour::SignIn(login) | Behaviour::TamperState(login) => login.clone(),
            Behaviour::Deny | Behaviour::Password { .. } => String::new(),
        };
        let mut landing = self.follow(self.http.get(url.clone()), &back).await;
        let mut callback = None;
        for _ in 0..4 {
            match landing {
                Landing::Back(url) => {
                    callback = Some(url);
                    break;
                }
                Landing::Page { url, html } => {
                    if matches!(behaviour, Behaviour::Deny) {
                        let abort = url
                            .join(&format!("{}/abort", url.path()))
                            .expect("the interaction's abort URL");
                        landing = self.follow(self.http.get(abort), &back).await;
                        continue;
                    }
                    let mut form = Form::parse(&html, &url);
                    if let Behaviour::Password { email, password } = &behaviour {
                        form.set("email", email);
                        form.set("password", password);
                        form.fields.push(("action".into(), "sign_in".into()));
                    } else if form.value("prompt") == Some("login") {
                        form.set("login", &login);
                        form.set("password", "any password");
                    }
                    landing = self
                        .follow(self.http.post(form.action).form(&form.fields), &back)
                        .await;
                }
            }
        }
        let mut callback = callback.expect("the provider sends the browser back to the app");
        if matches!(behaviour, Behaviour::TamperState(_)) {
            let pairs: Vec<(String, String)> = callback
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "state" { "forged".into() } else { v };
                    (k.into_owned(), v.into_owned())
                })
                .collect();
            callback.query_pairs_mut().clear().extend_pairs(pairs);
        }
        self.back_to_app(callback).await;
    }

    /// Confirms the provider's "sign out?" page, then follows it back to the app.
    async fn sign_out(&self, url: Url, back: &str) {
        let landing = self.follow(self.http.get(url), back).await;
        let landing = match landing {
            Landing::Page { url, html } => {
                let mut form = Form::parse(&html, &url);
                form.fields.push(("logout".into(), "yes".into()));
                self.follow(self.http.post(form.action).form(&form.fields), back)
                    .await
            }
            back => back,
        };
        match landing {
            Landing::Back(url) => self.back_to_app(url).await,
            Landing::Page { url, html } => panic!("signing out ended on {url}:\n{html}"),
        }
    }

    async fn back_to_app(&self, url: Url) {
        let page = reqwest::get(url)
            .await
            .expect("the app's listener answers")
            .text()
            .await
            .expect("a page");
        self.pages.lock().unwrap().push(page);
    }

    async fn follow(&self, mut request: reqwest::RequestBuilder, back: &str) -> Landing {
        for _ in 0..10 {
            let response = request.send().await.expect("provider request");
            let url = response.url().clone();
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .expect("a redirect has a Location");
                let next = url.join(location).expect("a valid Location");
                if next.as_str().starts_with(back) {
                    return Landing::Back(next);
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

enum Landing {
    Page { url: Url, html: String },
    Back(Url),
}

/// The first HTML form of a page: where it posts, and its fields with their initial values.
struct Form {
    action: Url,
    fields: Vec<(String, String)>,
}

impl Form {
    fn parse(html: &str, page: &Url) -> Form {
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

    fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(key, _)| key == name) {
            Some(field) => field.1 = value.to_owned(),
            None => panic!("the form has no field {name:?}: {:?}", self.fields),
        }
    }
}

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

/// `server/tests/oidc/provider.mjs` under node; gone when dropped (or when this process is).
pub struct OidcProvider {
    pub issuer: String,
    _stdin: ChildStdin,
    _child: Child,
    log: Arc<Mutex<String>>,
}

impl OidcProvider {
    pub async fn start() -> OidcProvider {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/oidc");
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
