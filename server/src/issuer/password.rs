//! Passwords of local accounts: a policy at the boundary, argon2id hashes at rest.
//!
//! Hashing is deliberately slow (tens of milliseconds optimised), so it runs on the blocking
//! thread pool, never on the async workers.

use std::fmt;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tallydesk_shared::ticket::FieldError;

pub const MIN_LEN: usize = 10;
/// Long enough for any passphrase, short enough that hashing stays cheap.
pub const MAX_LEN: usize = 1024;

/// Well-known passwords that meet the length rule; refused anyway.
const COMMON: [&str; 12] = [
    "1234567890",
    "12345678910",
    "0123456789",
    "password12",
    "password123",
    "password1234",
    "qwertyuiop",
    "1q2w3e4r5t",
    "iloveyou123",
    "abcdefghij",
    "aaaaaaaaaa",
    "tallydesk123",
];

/// A password that meets the policy. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Checks a new password: at least [`MIN_LEN`] characters, not only one repeated
    /// character, not a well-known one and not the account's email. `field` names the input
    /// in the error.
    pub fn parse(field: &'static str, input: &str, email: &str) -> Result<Self, FieldError> {
        let invalid = |message: String| FieldError::Invalid { field, message };
        let len = input.chars().count();
        if len < MIN_LEN {
            return Err(invalid(format!(
                "must be at least {MIN_LEN} characters long"
            )));
        }
        if len > MAX_LEN {
            return Err(FieldError::TooLong {
                field,
                max: MAX_LEN,
                len,
            });
        }
        if input.trim().is_empty() {
            return Err(invalid("must not be only spaces".into()));
        }
        let lower = input.to_lowercase();
        let mut chars = lower.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first)
            || COMMON.contains(&lower.as_str())
            || lower == email.to_lowercase()
        {
            return Err(invalid(
                "is too easy to guess: choose a longer or less common one".into(),
            ));
        }
        Ok(Password(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$...`) of a new password.
pub async fn hash(password: &Password) -> anyhow::Result<String> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("the password hashing task")?
}

/// Whether `candidate` is the password of `stored` (a PHC string). With no stored hash (no
/// such account), a dummy hash is checked so the answer takes as long either way.
pub async fn verify(stored: Option<String>, candidate: &str) -> anyhow::Result<bool> {
    let candidate = candidate.to_owned();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(dummy_hash);
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("a stored password hash is unreadable: {e}"))?;
        // The parameters come from the stored hash.
        let matches = Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .context("the password verification task")?
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            hasher()
                .hash_password(b"no account has this password", &salt)
                .map(|hash| hash.to_string())
                .unwrap_or_default()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_guessable_passwords_are_refused_naming_the_field() {
        for bad in [
            "",
            "short",
            "123456789",
            "aaaaaaaaaaaa",
            "Password123",
            "          ",
            "ana@example.com",
        ] {
            let err = Password::parse("password", bad, "ana@example.com")
                .expect_err("a weak password is refused");
            assert!(
                err.to_string().starts_with("password"),
                "the error names the field: {err}"
            );
        }
        assert!(Password::parse("password", "correct horse battery", "ana@example.com").is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let p = Password::parse("password", "correct horse battery", "").expect("strong enough");
        assert!(!format!("{p:?}").contains("horse"));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let p = Password::parse("password", "correct horse battery", "").expect("strong enough");
        let stored = hash(&p).await.expect("hashing works");
        assert!(stored.starts_with("$argon2id$"), "argon2id: {stored}");
        assert!(
            verify(Some(stored.clone()), "correct horse battery")
                .await
                .unwrap()
        );
        assert!(!verify(Some(stored), "correct horse batterY").await.unwrap());
        assert!(
            !verify(None, "correct horse battery").await.unwrap(),
            "no account, no match"
        );
    }
}
