//! The desktop core's sign-in parts for tests: servers for it to sign in to, a browser it
//! opens (an HTTP client filling in the provider's forms), the keychain of the test session,
//! and a clock that runs ahead.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::Url;
use sqlx::PgPool;
use tallydesk_desktop_core::Clock;
use tallydesk_desktop_core::account::{Browser, Keychain, Setup};
use tallydesk_server::issuer::password::Password;
use tallydesk_server::issuer::throttle::Limits;

use crate::AUDIENCE;
use crate::app::{Port, Served, serve, server_state, with_builtin_issuer};
use crate::oidc::{BrowserClient, Form, Landing};

/// A Tallydesk server on a loopback port, trusting `issuers` (and nothing else).
pub async fn start_server(owner: &PgPool, issuers: Vec<String>) -> Served {
    let state = server_state(
        owner,
        8,
        issuers,
        AUDIENCE,
        tallydesk_server::Clock::system(),
    )
    .await;
    serve(&state, owner, Port::bind().await).await
}

/// A Tallydesk server with its built-in issuer on (and no other), its public URL the loopback
/// address it serves on, and `email` its admin with `password`.
pub async fn start_builtin_server(owner: &PgPool, email: &str, password: &str) -> Served {
    let port = Port::bind().await;
    let clock = tallydesk_server::Clock::system();
    let state = server_state(owner, 8, Vec::new(), AUDIENCE, clock.clone()).await;
    let state = with_builtin_issuer(state, &port.url, Limits::default()).await;
    let parsed = tallydesk_shared::ticket::Email::parse(email).expect("an email");
    let password = Password::parse("password", password, email).expect("a strong password");
    tallydesk_server::admin::create_admin(
        owner,
        &port.url,
        &parsed,
        Some("Ana"),
        &password,
        clock.now(),
    )
    .await
    .expect("the admin account is made");
    serve(&state, owner, port).await
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

/// A clock that runs with the system's, ahead by what the test moves it forward; real
/// providers' tokens still read as issued now.
#[derive(Clone, Default)]
pub struct AheadClock(Arc<AtomicI64>);

impl AheadClock {
    pub fn clock(&self) -> Clock {
        let offset = self.0.clone();
        Clock::fixed(move || Utc::now() + TimeDelta::seconds(offset.load(Ordering::SeqCst)))
    }

    pub fn advance(&self, by: TimeDelta) {
        self.0.fetch_add(by.num_seconds(), Ordering::SeqCst);
    }
}

/// The account's outside parts for one test: this browser, the keychain, a movable clock.
pub fn setup(browser: &TestBrowser, clock: &AheadClock) -> Setup {
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
    client: BrowserClient,
    behaviour: Arc<Mutex<Behaviour>>,
    /// Every URL the app asked to open.
    pub opened: Arc<Mutex<Vec<String>>>,
    /// The pages the app's loopback listener answered with.
    pub pages: Arc<Mutex<Vec<String>>>,
}

impl TestBrowser {
    pub fn new(behaviour: Behaviour) -> TestBrowser {
        TestBrowser {
            client: BrowserClient::new(),
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
        let client = &self.client;
        let mut landing = client.follow(client.http.get(url.clone()), &back).await;
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
                        landing = client.follow(client.http.get(abort), &back).await;
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
                    landing = client.submit(form, &back).await;
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
        let client = &self.client;
        let landing = client.follow(client.http.get(url), back).await;
        let landing = match landing {
            Landing::Page { url, html } => {
                let mut form = Form::parse(&html, &url);
                form.fields.push(("logout".into(), "yes".into()));
                client.submit(form, back).await
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
}
