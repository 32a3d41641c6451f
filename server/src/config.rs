//! Configuration: environment variables, each also a command-line flag.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::db::{self, SessionLimits};
use crate::embedded_pg::EmbeddedPostgres;
use crate::http::bounds::Deadlines;

/// The data directory of a server running as root.
pub const ROOT_DATA_DIR: &str = "/var/lib/tallydesk-server";

#[derive(Debug, Parser)]
#[command(
    name = "tallydesk-server",
    version,
    about = "The Tallydesk helpdesk server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Fill a "Tallydesk Demo" tenant with realistic customers, tickets, comments and notes.
    SeedDemo {
        /// Invite this email as admin of the demo tenant, so you see it when you sign in.
        #[arg(long, env = "TALLYDESK_DEMO_ADMIN_EMAIL")]
        admin_email: Option<String>,
    },
    /// Create a Tallydesk account (built-in issuer) that is admin of the "Default" tenant, or
    /// reset its password. The password is read from standard input when that is not a
    /// terminal, else prompted for twice. Works whether or not the server is running.
    CreateAdmin {
        /// The account's email, which is also its sign-in name.
        #[arg(long)]
        email: String,
        /// The person's name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Make a new signing key for the built-in issuer's tokens and print its id (kid). The old
    /// keys stay published until the tokens they signed have expired, so nobody is signed
    /// out. Works whether or not the server is running; running servers sign with the new key
    /// from their next token. (Servers also rotate by themselves: see
    /// TALLYDESK_SIGNING_KEY_DAYS.)
    RotateKeys,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "TALLYDESK_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// Where the server keeps its data (its private database cluster, when it runs one).
    #[arg(long, env = "TALLYDESK_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// A Postgres database to use instead of the private cluster.
    #[arg(
        long,
        env = "TALLYDESK_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<SecretUrl>,
    /// Accepted token issuers (OIDC), comma-separated.
    #[arg(
        long,
        env = "TALLYDESK_OIDC_ISSUER",
        value_delimiter = ',',
        global = true
    )]
    pub oidc_issuer: Vec<String>,
    /// The audience access tokens must carry.
    #[arg(
        long,
        env = "TALLYDESK_OIDC_AUDIENCE",
        default_value = "tallydesk",
        global = true
    )]
    pub oidc_audience: String,
    /// The desktop app's client id at the external issuers.
    #[arg(
        long,
        env = "TALLYDESK_OIDC_CLIENT_ID",
        default_value = "tallydesk-desktop",
        global = true
    )]
    pub oidc_client_id: String,
    /// The scopes the desktop app asks external issuers for, space-separated.
    #[arg(
        long,
        env = "TALLYDESK_OIDC_SCOPES",
        default_value = "openid email profile offline_access",
        global = true
    )]
    pub oidc_scopes: String,
    /// The server's address as clients reach it, e.g. `https://desk.example.com`. It is the
    /// built-in issuer's identifier. Default: `http://<listen address>` (127.0.0.1 for 0.0.0.0).
    #[arg(long, env = "TALLYDESK_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// The server's own OIDC issuer with local accounts: `auto` turns it on when no
    /// TALLYDESK_OIDC_ISSUER is configured.
    #[arg(
        long,
        env = "TALLYDESK_BUILTIN_ISSUER",
        value_enum,
        default_value_t = BuiltinIssuer::Auto,
        global = true
    )]
    pub builtin_issuer: BuiltinIssuer,
    /// The built-in issuer's signing key is replaced when it is this many days old: each
    /// server checks at start and then daily (with several servers, one rotates).
    #[arg(
        long,
        env = "TALLYDESK_SIGNING_KEY_DAYS",
        default_value_t = crate::issuer::keys::DEFAULT_KEY_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=3650),
        global = true
    )]
    pub signing_key_days: u32,
    /// Deletions stay in the sync change log this many days; a desktop that has not synced
    /// for longer pulls everything again (its unsent changes are kept).
    #[arg(
        long,
        env = "TALLYDESK_TOMBSTONE_DAYS",
        default_value_t = crate::sync::compaction::DEFAULT_TOMBSTONE_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=3650),
        global = true
    )]
    pub tombstone_days: u32,
    /// At most this many sign-ins may wait at the built-in issuer's login form at once (each
    /// lives 15 minutes); past it, new ones are refused `temporarily_unavailable`, so
    /// anonymous requests cannot grow the table without bound.
    #[arg(
        long,
        env = "TALLYDESK_ISSUER_MAX_INTERACTIONS",
        default_value_t = crate::issuer::throttle::DEFAULT_MAX_INTERACTIONS,
        value_parser = clap::value_parser!(u32).range(100..=10_000_000),
        global = true
    )]
    pub issuer_max_interactions: u32,
    /// Where receipt images go: unset for `<data dir>/blobs`, `file:///path`, or
    /// `s3://bucket/prefix` (S3 or compatible, with the standard AWS_* settings; needs a server
    /// built with `--features aws`).
    #[arg(long, env = "TALLYDESK_BLOB_STORE", global = true)]
    pub blob_store: Option<String>,
    /// Seconds a client may take to send a request's whole body (408 `request_timeout`
    /// after). Bodies are read before any database work starts, so a slow client holds no
    /// connection; raise it if people upload large receipts over slow links.
    #[arg(
        long,
        env = "TALLYDESK_BODY_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub body_timeout_secs: u64,
    /// Seconds within which a request must be answered, its body's time included (503
    /// `busy` with `Retry-After` after). An `/events` stream's limit covers only its start.
    #[arg(
        long,
        env = "TALLYDESK_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub request_timeout_secs: u64,
    /// Seconds a database statement of a request may run before Postgres cancels it
    /// (`statement_timeout` of the request role's connections).
    #[arg(
        long,
        env = "TALLYDESK_STATEMENT_TIMEOUT_SECS",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub statement_timeout_secs: u64,
    /// Seconds a request's connection may sit idle inside a transaction before Postgres ends
    /// its session (`idle_in_transaction_session_timeout` of the request role's connections).
    #[arg(
        long,
        env = "TALLYDESK_IDLE_IN_TRANSACTION_TIMEOUT_SECS",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub idle_in_transaction_timeout_secs: u64,
}

/// Whether the server runs its own OIDC issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuiltinIssuer {
    /// On when no external issuer is configured.
    Auto,
    On,
    Off,
}

impl Config {
    /// Whether the built-in issuer runs.
    pub fn builtin_issuer_on(&self) -> bool {
        match self.builtin_issuer {
            BuiltinIssuer::On => true,
            BuiltinIssuer::Off => false,
            BuiltinIssuer::Auto => self.oidc_issuer.iter().all(|i| i.trim().is_empty()),
        }
    }

    /// How long clients may take to send a body, and requests to be answered.
    pub fn deadlines(&self) -> Deadlines {
        Deadlines {
            body: Duration::from_secs(self.body_timeout_secs),
            request: Duration::from_secs(self.request_timeout_secs),
        }
    }

    /// What Postgres cuts short on the request role's connections.
    pub fn session_limits(&self) -> SessionLimits {
        SessionLimits {
            statement: Duration::from_secs(self.statement_timeout_secs),
            idle_in_transaction: Duration::from_secs(self.idle_in_transaction_timeout_secs),
        }
    }

    /// How long deletions stay in the sync change log.
    /// Limits of the built-in issuer: the defaults, with the setting for waiting sign-ins.
    pub fn issuer_limits(&self) -> crate::issuer::throttle::Limits {
        crate::issuer::throttle::Limits {
            max_interactions: i64::from(self.issuer_max_interactions),
            ..Default::default()
        }
    }

    pub fn tombstone_retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.tombstone_days))
    }

    /// How old the built-in issuer's signing key may get before it is rotated.
    pub fn signing_key_max_age(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.signing_key_days))
    }

    /// The public URL without a trailing slash: as configured, else from the listen address.
    pub fn public_url(&self) -> anyhow::Result<String> {
        let url = match &self.public_url {
            Some(url) => url.trim().trim_end_matches('/').to_owned(),
            None => {
                let mut addr = self.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(match addr {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{addr}")
            }
        };
        let parsed = reqwest::Url::parse(&url)
            .with_context(|| format!("TALLYDESK_PUBLIC_URL {url:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https")
                && parsed.host().is_some()
                && parsed.query().is_none()
                && parsed.fragment().is_none(),
            "TALLYDESK_PUBLIC_URL {url:?} must be an http(s) URL without query or fragment"
        );
        Ok(url)
    }

    /// The external issuers, as configured (blank entries dropped).
    pub fn external_issuers(&self) -> Vec<String> {
        self.oidc_issuer
            .iter()
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect()
    }

    /// The scopes for external issuers.
    pub fn scopes(&self) -> Vec<String> {
        self.oidc_scopes
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// The data directory: as configured, else the platform's. As root it is
    /// [`ROOT_DATA_DIR`], since the private cluster runs as `postgres`, which cannot enter
    /// root's home directory.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if crate::embedded_pg::effective_uid()? == 0 {
            return Ok(PathBuf::from(ROOT_DATA_DIR));
        }
        dirs::data_dir()
            .map(|d| d.join("tallydesk-server"))
            .context("no data directory on this platform: set TALLYDESK_DATA_DIR")
    }
}

/// A database URL, which may hold a password: never printed.
#[derive(Clone)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretUrl(***)")
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// The server's database: the owner's pool (migrations), the request pool, and the private
/// cluster when the server runs one.
pub struct Database {
    pub owner: PgPool,
    pub app: PgPool,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects (starting the private cluster when no URL is configured) and migrates.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (url, embedded) = match &config.database_url {
            Some(url) => (url.expose().to_owned(), None),
            None => {
                let dir = config.data_dir()?.join("postgres");
                let pg = EmbeddedPostgres::start(&dir).await?;
                (pg.database_url(), Some(pg))
            }
        };
        let options: PgConnectOptions = url
            .parse()
            .context("TALLYDESK_DATABASE_URL is not a Postgres URL")?;
        let owner = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .context("connecting to the database")?;
        db::migrate(&owner).await?;
        let app = db::app_pool(options, 32, config.session_limits()).await?;
        Ok(Self {
            owner,
            app,
            embedded,
        })
    }

    /// Closes the pools, and stops the private cluster only if this process started it: a
    /// command run beside a running server leaves the server's cluster alone.
    pub async fn close_leaving_others(self) -> anyhow::Result<()> {
        self.app.close().await;
        self.owner.close().await;
        match self.embedded {
            Some(pg) if pg.reused() => pg.leave_running(),
            Some(pg) => pg.stop().await?,
            None => {}
        }
        Ok(())
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.app.close().await;
        self.owner.close().await;
        if let Some(pg) = self.embedded {
            pg.stop().await?;
        }
        Ok(())
    }
}

/// The HTTP client for talking to identity providers: bounded time, no redirects followed.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tallydesk-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["tallydesk-server"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("valid arguments").config
    }

    #[test]
    fn the_public_url_defaults_to_the_listen_address_reachable_from_here() {
        let c = config(&["--listen", "0.0.0.0:9000"]);
        assert_eq!(c.public_url().unwrap(), "http://127.0.0.1:9000");
        let c = config(&["--listen", "[::]:9000"]);
        assert_eq!(c.public_url().unwrap(), "http://[::1]:9000");
        let c = config(&["--public-url", "https://desk.example.com/"]);
        assert_eq!(
            c.public_url().unwrap(),
            "https://desk.example.com",
            "no trailing slash: it is the issuer identifier"
        );
        assert!(
            config(&["--public-url", "desk.example.com"])
                .public_url()
                .is_err()
        );
    }

    #[test]
    fn the_builtin_issuer_is_on_by_default_only_without_external_ones() {
        assert!(config(&[]).builtin_issuer_on());
        assert!(!config(&["--oidc-issuer", "https://idp.example.com"]).builtin_issuer_on());
        assert!(
            config(&[
                "--oidc-issuer",
                "https://idp.example.com",
                "--builtin-issuer",
                "on"
            ])
            .builtin_issuer_on()
        );
        assert!(!config(&["--builtin-issuer", "off"]).builtin_issuer_on());
        assert_eq!(
            config(&[]).signing_key_max_age(),
            chrono::Duration::days(90),
            "signing keys are rotated after 90 days unless told otherwise"
        );
        assert_eq!(
            config(&["--signing-key-days", "7"]).signing_key_max_age(),
            chrono::Duration::days(7)
        );
        assert!(
            Cli::try_parse_from(["tallydesk-server", "--signing-key-days", "0"]).is_err(),
            "a key cannot be due before it is made"
        );
        assert_eq!(
            config(&[]).scopes(),
            ["openid", "email", "profile", "offline_access"]
        );
    }

    #[test]
    fn clients_and_requests_have_time_limits_by_default() {
        let c = config(&[]);
        assert_eq!(
            c.deadlines(),
            Deadlines::default(),
            "10 s for a body, 30 s for a request"
        );
        assert_eq!(c.session_limits(), SessionLimits::default());
        let c = config(&["--body-timeout-secs", "60", "--statement-timeout-secs", "5"]);
        assert_eq!(c.deadlines().body, Duration::from_secs(60));
        assert_eq!(c.session_limits().statement, Duration::from_secs(5));
        assert!(
            Cli::try_parse_from(["tallydesk-server", "--request-timeout-secs", "0"]).is_err(),
            "a request with no time at all could never be answered"
        );
    }

    #[test]
    fn waiting_sign_ins_are_capped_by_a_setting() {
        let c = config(&[]);
        assert_eq!(
            c.issuer_limits(),
            crate::issuer::throttle::Limits::default()
        );
        assert_eq!(c.issuer_limits().max_interactions, 10_000);
        let c = config(&["--issuer-max-interactions", "500"]);
        assert_eq!(c.issuer_limits().max_interactions, 500);
        assert!(
            Cli::try_parse_from(["tallydesk-server", "--issuer-max-interactions", "0"]).is_err(),
            "with no room at all nobody could sign in"
        );
    }
}
