//! Configuration: environment variables, each also a command-line flag.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::db;
use crate::embedded_pg::EmbeddedPostgres;

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
}

impl Config {
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
        let app = db::app_pool(options, 32).await?;
        Ok(Self {
            owner,
            app,
            embedded,
        })
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
