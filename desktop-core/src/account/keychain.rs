//! The OS keychain, where the refresh token waits between runs of the app.
//!
//! Secret Service on Linux, the login keychain on macOS, the Credential Manager on Windows,
//! through `keyring-core`. Any failure (no Secret Service running, a locked keychain) leaves the
//! app usable: tokens stay in memory and the person is told why they will sign in again.

use std::sync::{Arc, OnceLock};

use keyring_core::{CredentialStore, Entry};

use super::KeychainState;

/// The service name entries are filed under.
const SERVICE: &str = "Tallydesk";

type Store = Result<Arc<CredentialStore>, String>;

/// A keychain, or the reason there is none. The platform's is reached on first use, so a
/// start-up in local mode (no saved sign-in) does not wake the Secret Service.
#[derive(Clone)]
pub struct Keychain {
    store: Arc<OnceLock<Store>>,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.store.get() {
            None => f.write_str("Keychain(not opened yet)"),
            Some(Ok(_)) => f.write_str("Keychain(available)"),
            Some(Err(reason)) => write!(f, "Keychain(unavailable: {reason})"),
        }
    }
}

/// Whose secret an entry holds: one per server, identity provider and subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeychainKey {
    pub server_url: String,
    pub issuer: String,
    pub subject: String,
}

impl KeychainKey {
    fn user(&self) -> String {
        format!("{} {} {}", self.server_url, self.issuer, self.subject)
    }
}

/// What went wrong when the platform's keychain cannot be used, in the person's words.
#[cfg(target_os = "linux")]
const UNAVAILABLE: &str = "no keychain (Secret Service) is running";
#[cfg(target_os = "macos")]
const UNAVAILABLE: &str = "the login keychain can't be used";
#[cfg(target_os = "windows")]
const UNAVAILABLE: &str = "the Credential Manager can't be used";
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
const UNAVAILABLE: &str = "there is no keychain";

fn no_keychain(detail: &str) -> String {
    format!("Your sign-in can't be saved: {UNAVAILABLE} ({detail}); you'll sign in again next time")
}

impl Keychain {
    /// The platform's keychain.
    pub fn system() -> Keychain {
        Keychain {
            store: Arc::new(OnceLock::new()),
        }
    }

    /// No keychain: tokens stay in memory only, for `reason` (shown to the person).
    pub fn unavailable(reason: impl Into<String>) -> Keychain {
        Keychain {
            store: Arc::new(OnceLock::from(Err(reason.into()))),
        }
    }

    /// The store, reached on first use. Blocks on that first use (D-Bus, Security framework).
    fn store(&self) -> &Store {
        self.store
            .get_or_init(|| platform_store().map_err(|e| no_keychain(&e.to_string())))
    }

    /// Whether a secret given to [`Keychain::save`] can be kept, as far as is known before trying.
    pub fn state(&self) -> KeychainState {
        match self.store() {
            Ok(_) => KeychainState::Stored,
            Err(reason) => KeychainState::MemoryOnly {
                reason: reason.clone(),
            },
        }
    }

    fn entry(&self, key: &KeychainKey) -> Result<Entry, String> {
        let store = self.store().as_ref().map_err(Clone::clone)?;
        store
            .build(SERVICE, &key.user(), None)
            .map_err(|e| no_keychain(&e.to_string()))
    }

    /// Keeps `secret` under `key`, replacing what was there. The error says why it could not.
    pub async fn save(&self, key: &KeychainKey, secret: &str) -> Result<(), String> {
        let secret = secret.to_owned();
        self.blocking(key, move |entry| entry.set_password(&secret))
            .await
    }

    /// The secret kept under `key`, if any.
    pub async fn load(&self, key: &KeychainKey) -> Result<Option<String>, String> {
        self.blocking(key, |entry| match entry.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    /// Forgets the secret under `key` (nothing to forget is fine).
    pub async fn delete(&self, key: &KeychainKey) -> Result<(), String> {
        self.blocking(key, |entry| match entry.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        })
        .await
    }

    /// Runs `f` on the entry under `key` off the async threads: keychain calls (and reaching
    /// the keychain the first time) block.
    async fn blocking<T: Send + 'static>(
        &self,
        key: &KeychainKey,
        f: impl FnOnce(Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let keychain = self.clone();
        let key = key.clone();
        match tokio::task::spawn_blocking(move || {
            let entry = keychain.entry(&key)?;
            f(entry).map_err(|e| no_keychain(&e.to_string()))
        })
        .await
        {
            Ok(result) => result,
            Err(e) => Err(no_keychain(&format!("the keychain call failed: {e}"))),
        }
    }
}

#[cfg(target_os = "linux")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return Err(keyring_core::Error::NotSupportedByStore(
            "no D-Bus session".to_owned(),
        ));
    }
    let store: Arc<CredentialStore> = dbus_secret_service_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Err(keyring_core::Error::NotSupportedByStore(
        "no keychain on this platform".to_owned(),
    ))
}
