//! A private PostgreSQL cluster, run by the server when no database URL is configured.
//!
//! Everything lives under one directory:
//! - `data/`: the cluster itself (`PGDATA`), created by `initdb` on first start;
//! - `run/`: the Unix socket directory; the cluster listens on no TCP address;
//! - `postgres.log`: the server log, the place to look when starting fails.
//!
//! The superuser is `tallydesk` with `trust` authentication, so access is guarded by the
//! permissions of the directory: only its owner (and root) can reach the socket.
//!
//! PostgreSQL refuses to run as root. When this process is root, the cluster runs as the
//! `postgres` system user, which then owns the directory.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use anyhow::{Context as _, anyhow, bail};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// Superuser created by `initdb` and used by the server.
const SUPERUSER: &str = "tallydesk";
/// Database the server uses.
const DATABASE: &str = "tallydesk";
/// The port only names the socket file (`.s.PGSQL.<port>`): nothing listens on TCP.
const PORT: u16 = 5432;
/// Oldest major version the server supports.
const MIN_MAJOR_VERSION: u32 = 15;
/// Unix socket paths are limited to 108 bytes on Linux (104 on macOS); stay clearly below.
const MAX_SOCKET_PATH_LEN: usize = 100;
/// Settings written by us on every start, included from `postgresql.conf`.
const SETTINGS_FILE: &str = "tallydesk.conf";
const INCLUDE_LINE: &str = "include_if_exists = 'tallydesk.conf'";

/// A running PostgreSQL cluster owned by this process.
pub struct EmbeddedPostgres {
    pg_ctl: PathBuf,
    dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    run_as: Option<SystemUser>,
    stopped: bool,
    /// Whether the cluster was already running (another process's, e.g. the server's) when
    /// [`EmbeddedPostgres::start`] found it.
    reused: bool,
}

impl std::fmt::Debug for EmbeddedPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedPostgres")
            .field("dir", &self.dir)
            .field("run_as", &self.run_as.as_ref().map(|user| &user.name))
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl EmbeddedPostgres {
    /// Initialises (first time) and starts a cluster under `dir` (e.g. `<data dir>/postgres`),
    /// creating database `tallydesk`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let dir = std::path::absolute(dir)
            .with_context(|| format!("resolving the database directory {}", dir.display()))?;
        let binaries = PgBinaries::find()?;
        let run_as = user_to_run_as()?;

        let mut pg = Self {
            pg_ctl: binaries.pg_ctl.clone(),
            data_dir: dir.join("data"),
            socket_dir: dir.join("run"),
            log_file: dir.join("postgres.log"),
            dir,
            run_as,
            // Nothing to stop until the cluster runs.
            stopped: true,
            reused: false,
        };
        pg.check_socket_path_len()?;
        pg.prepare_dir().await?;

        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.initdb(&binaries.initdb).await?;
        }
        pg.write_settings().await?;

        if pg.is_running().await? {
            tracing::info!(dir = %pg.dir.display(), "reusing the running embedded PostgreSQL");
            pg.reused = true;
        } else {
            pg.pg_ctl_start().await?;
        }
        pg.stopped = false;

        pg.create_database().await?;
        Ok(pg)
    }

    /// A sqlx-compatible URL for database `tallydesk` as a superuser, over the Unix socket,
    /// e.g. `postgres://tallydesk@localhost:5432/tallydesk?host=/path/to/socketdir`.
    pub fn database_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{DATABASE}?host={}",
            percent_encode(&self.socket_dir.to_string_lossy())
        )
    }

    /// Whether the cluster was already running when this handle started it.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Lets go of the cluster without stopping it (it is someone else's to stop).
    pub fn leave_running(mut self) {
        self.stopped = true;
    }

    /// Stops the cluster (pg_ctl stop -m fast). Also called best-effort on Drop if not stopped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        tracing::info!(dir = %self.dir.display(), "stopping the embedded PostgreSQL cluster");
        // Whatever happens now, Drop must not try again.
        self.stopped = true;
        let mut command = self.command(&self.pg_ctl);
        command.args(stop_args(&self.data_dir));
        run(command, "pg_ctl stop", &self.log_file).await?;
        tracing::info!("embedded PostgreSQL cluster stopped");
        Ok(())
    }

    fn check_socket_path_len(&self) -> anyhow::Result<()> {
        let socket = self.socket_dir.join(format!(".s.PGSQL.{PORT}"));
        let len = socket.as_os_str().len();
        if len >= MAX_SOCKET_PATH_LEN {
            bail!(
                "the database socket path {} is {len} bytes long, but Unix sockets allow fewer \
                 than {MAX_SOCKET_PATH_LEN}: choose a shorter data directory, or set \
                 TALLYDESK_DATABASE_URL to use an existing PostgreSQL server",
                socket.display()
            );
        }
        Ok(())
    }

    /// Creates the directory and the socket directory, owned by the user the cluster runs as
    /// and private to it.
    async fn prepare_dir(&self) -> anyhow::Result<()> {
        if let Some(user) = &self.run_as {
            // Fail before creating anything when that user cannot even get there.
            let existing_parent = self
                .dir
                .ancestors()
                .skip(1)
                .find(|ancestor| ancestor.exists())
                .unwrap_or(Path::new("/"));
            self.check_reachable_by(user, existing_parent, false)
                .await?;
        }
        for dir in [&self.dir, &self.socket_dir] {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("creating {}", dir.display()))?;
            if let Some(user) = &self.run_as {
                std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).with_context(
                    || format!("giving {} to the `{}` user", dir.display(), user.name),
                )?;
            }
            tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .await
                .with_context(|| format!("making {} private", dir.display()))?;
        }
        if let Some(user) = &self.run_as {
            if self.log_file.exists() {
                std::os::unix::fs::chown(&self.log_file, Some(user.uid), Some(user.gid))
                    .with_context(|| {
                        format!("giving {} to `{}`", self.log_file.display(), user.name)
                    })?;
            }
            // Directories created above may be closed to others under a strict umask.
            self.check_reachable_by(user, &self.dir, true).await?;
        }
        Ok(())
    }

    /// The cluster runs as another user, who needs to reach the directory through every
    /// ancestor (a home directory like /root usually is closed to others). Probes `path` with
    /// `test` run as that user.
    async fn check_reachable_by(
        &self,
        user: &SystemUser,
        path: &Path,
        writable: bool,
    ) -> anyhow::Result<()> {
        let mut probe = self.command(Path::new("test"));
        if writable {
            probe.arg("-w").arg(path).arg("-a");
        }
        probe.arg("-x").arg(path);
        // The probe must not run inside a directory it checks.
        probe.current_dir("/");
        let reachable = tokio::process::Command::from(probe)
            .status()
            .await
            .context("running `test` to check the database directory's permissions")?
            .success();
        if reachable {
            return Ok(());
        }
        // Name the outermost directory in the way, for the message.
        let ancestors: Vec<&Path> = path.ancestors().collect();
        let blocker = ancestors
            .into_iter()
            .rev()
            .find(|ancestor| !user.can_traverse(ancestor))
            .map(|ancestor| format!(" ({} is closed to it)", ancestor.display()))
            .unwrap_or_default();
        bail!(
            "PostgreSQL refuses to run as root, so it runs as the `{name}` user, who cannot reach \
             {dir}{blocker}: set TALLYDESK_DATA_DIR to a directory it can reach (under /var/lib, \
             say, not in root's home), or set TALLYDESK_DATABASE_URL to use an existing \
             PostgreSQL server",
            name = user.name,
            dir = self.dir.display(),
        )
    }

    async fn initdb(&self, initdb: &Path) -> anyhow::Result<()> {
        tracing::info!(dir = %self.data_dir.display(), "initialising an embedded PostgreSQL");
        let attempt = |locale: &'static str| {
            let mut command = self.command(initdb);
            command
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8"])
                .arg(format!("--locale={locale}"));
            command
        };
        let output = output_of(attempt("C.UTF-8"), "initdb").await?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("locale") {
            tracing::info!("locale C.UTF-8 is not available, initialising with locale C");
            // initdb removes what it created when it fails, so the directory is empty again.
            return run(attempt("C"), "initdb", &self.log_file).await.map(drop);
        }
        Err(failure("initdb", &output, &self.log_file))
    }

    /// Writes the settings that depend on the directory; rewritten on every start so the
    /// cluster follows the directory if it moves.
    async fn write_settings(&self) -> anyhow::Result<()> {
        let settings = format!(
            "# Written by tallydesk-server on every start; edits are lost.\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{}'\n\
             unix_socket_permissions = 0700\n",
            conf_escape(&self.socket_dir.to_string_lossy())
        );
        let settings_file = self.data_dir.join(SETTINGS_FILE);
        tokio::fs::write(&settings_file, settings)
            .await
            .with_context(|| format!("writing {}", settings_file.display()))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(&settings_file, Some(user.uid), Some(user.gid)).with_context(
                || format!("giving {} to `{}`", settings_file.display(), user.name),
            )?;
        }

        let conf_file = self.data_dir.join("postgresql.conf");
        let conf = tokio::fs::read_to_string(&conf_file)
            .await
            .with_context(|| format!("reading {}", conf_file.display()))?;
        if !conf.lines().any(|line| line.trim() == INCLUDE_LINE) {
            let mut conf = conf;
            if !conf.ends_with('\n') {
                conf.push('\n');
            }
            conf.push_str("\n# Settings managed by tallydesk-server\n");
            conf.push_str(INCLUDE_LINE);
            conf.push('\n');
            // Writing in place keeps the file's owner and mode.
            tokio::fs::write(&conf_file, conf)
                .await
                .with_context(|| format!("writing {}", conf_file.display()))?;
        }
        Ok(())
    }

    async fn is_running(&self) -> anyhow::Result<bool> {
        let mut command = self.command(&self.pg_ctl);
        command.arg("status").arg("-D").arg(&self.data_dir);
        let output = output_of(command, "pg_ctl status").await?;
        // 0: running; 3: not running; 4: no accessible data directory.
        match output.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(failure("pg_ctl status", &output, &self.log_file)),
        }
    }

    async fn pg_ctl_start(&self) -> anyhow::Result<()> {
        tracing::info!(
            dir = %self.dir.display(),
            log = %self.log_file.display(),
            "starting the embedded PostgreSQL cluster"
        );
        let mut command = self.command(&self.pg_ctl);
        command
            .arg("start")
            .arg("-w")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_file);
        run(command, "pg_ctl start", &self.log_file).await?;
        tracing::info!(socket_dir = %self.socket_dir.display(), "embedded PostgreSQL started");
        Ok(())
    }

    async fn create_database(&self) -> anyhow::Result<()> {
        let options = PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database("postgres");
        let context = || {
            format!(
                "connecting to the embedded PostgreSQL cluster at {} (see {})",
                self.socket_dir.display(),
                self.log_file.display()
            )
        };
        let mut conn = PgConnection::connect_with(&options)
            .await
            .with_context(context)?;
        let exists: bool =
            sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await
                .with_context(context)?;
        if !exists {
            tracing::info!(database = DATABASE, "creating the database");
            // `create database` takes no parameters; the name is a constant.
            let created = sqlx::query(&format!("create database {DATABASE}"))
                .execute(&mut conn)
                .await;
            match created {
                Ok(_) => {}
                // Someone else created it in the meantime: what we wanted.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("creating database {DATABASE}"));
                }
            }
        }
        conn.close().await.ok();
        Ok(())
    }

    /// A command for a PostgreSQL program, run as the cluster's user.
    fn command(&self, program: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            // Settings come from the arguments and the settings file only.
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .env_remove("PGUSER")
            .env_remove("PGDATABASE")
            .env_remove("PGOPTIONS");
        if let Some(user) = &self.run_as {
            // std drops supplementary groups when root switches user.
            command.uid(user.uid).gid(user.gid);
            command
                .env("HOME", &user.home)
                .env("USER", &user.name)
                .env("LOGNAME", &user.name);
        }
        command
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        tracing::info!(dir = %self.dir.display(), "stopping the embedded PostgreSQL on drop");
        let mut command = self.command(&self.pg_ctl);
        command.args(stop_args(&self.data_dir));
        match command.output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => tracing::warn!(
                stderr = %String::from_utf8_lossy(&output.stderr).trim(),
                log = %self.log_file.display(),
                "could not stop the embedded PostgreSQL cluster"
            ),
            Err(error) => tracing::warn!(
                %error,
                "could not run pg_ctl to stop the embedded PostgreSQL cluster"
            ),
        }
    }
}

fn stop_args(data_dir: &Path) -> Vec<&OsStr> {
    vec![
        OsStr::new("stop"),
        OsStr::new("-w"),
        OsStr::new("-m"),
        OsStr::new("fast"),
        OsStr::new("-D"),
        data_dir.as_os_str(),
    ]
}

/// The PostgreSQL programs we run.
struct PgBinaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

impl PgBinaries {
    /// `TALLYDESK_PG_BIN` if set, else the newest `/usr/lib/postgresql/<N>/bin` (Debian,
    /// Ubuntu) with N >= 15, else `initdb` and `pg_ctl` on `PATH`.
    fn find() -> anyhow::Result<Self> {
        if let Some(bin) = std::env::var_os("TALLYDESK_PG_BIN") {
            let bin = PathBuf::from(bin);
            return Self::in_dir(&bin).ok_or_else(|| {
                anyhow!(
                    "TALLYDESK_PG_BIN is {}, which holds no `initdb` and `pg_ctl`",
                    bin.display()
                )
            });
        }
        if let Some(found) = newest_debian_binaries() {
            return Ok(found);
        }
        if let Some(found) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find_map(|dir| Self::in_dir(&dir))
        {
            return Ok(found);
        }
        bail!(
            "PostgreSQL (version {MIN_MAJOR_VERSION} or newer) is not installed: install it \
             (`apt-get install postgresql-15`, or run scripts/setup), set TALLYDESK_PG_BIN to the \
             directory holding `initdb` and `pg_ctl`, or set TALLYDESK_DATABASE_URL to use an \
             existing PostgreSQL server"
        )
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        let found = Self {
            initdb: dir.join("initdb"),
            pg_ctl: dir.join("pg_ctl"),
        };
        (found.initdb.is_file() && found.pg_ctl.is_file()).then_some(found)
    }
}

fn newest_debian_binaries() -> Option<PgBinaries> {
    let entries = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            (major >= MIN_MAJOR_VERSION).then_some((major, entry.path().join("bin")))
        })
        .filter_map(|(major, bin)| Some((major, PgBinaries::in_dir(&bin)?)))
        .max_by_key(|(major, _)| *major)
        .map(|(_, binaries)| binaries)
}

/// A local account, from `/etc/passwd`.
#[derive(Debug, Clone)]
struct SystemUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

impl SystemUser {
    fn lookup(name: &str) -> anyhow::Result<Option<Self>> {
        let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        Ok(passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [user, _password, uid, gid, _gecos, home, ..] if *user == name => Some(Self {
                    name: name.to_owned(),
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                    home: PathBuf::from(home),
                }),
                _ => None,
            }
        }))
    }

    /// Whether the mode bits let this user search `dir`; only used to explain a failure.
    fn can_traverse(&self, dir: &Path) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(meta) = std::fs::metadata(dir) else {
            return false;
        };
        let mode = meta.mode();
        if meta.uid() == self.uid {
            mode & 0o100 != 0
        } else if meta.gid() == self.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    }
}

/// `None` to run PostgreSQL as ourselves; the `postgres` user when we are root.
fn user_to_run_as() -> anyhow::Result<Option<SystemUser>> {
    if effective_uid()? != 0 {
        return Ok(None);
    }
    match SystemUser::lookup("postgres")? {
        Some(user) if user.uid != 0 => {
            tracing::info!(
                user = %user.name,
                "running as root, so the embedded PostgreSQL cluster runs as the `postgres` user"
            );
            Ok(Some(user))
        }
        _ => bail!(
            "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as: \
             create one (`adduser --system --group postgres`; installing postgresql-15 does it), \
             run the server as another user, or set TALLYDESK_DATABASE_URL to use an existing \
             PostgreSQL server"
        ),
    }
}

/// The effective user id, from /proc on Linux, else from `id -u`.
pub fn effective_uid() -> anyhow::Result<u32> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        // "Uid:\t<real>\t<effective>\t<saved>\t<filesystem>"
        if let Some(euid) = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|euid| euid.parse().ok())
        {
            return Ok(euid);
        }
    }
    let output = std::process::Command::new("id")
        .arg("-u")
        .output()
        .context("running `id -u` to find out whether we are root")?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("reading the output of `id -u`")
}

async fn output_of(command: std::process::Command, what: &str) -> anyhow::Result<Output> {
    let program = command.get_program().to_owned();
    tokio::process::Command::from(command)
        .output()
        .await
        .with_context(|| format!("running {what} ({})", Path::new(&program).display()))
}

/// Runs `command`, failing with its output and the log file to read when it does not succeed.
async fn run(
    command: std::process::Command,
    what: &str,
    log_file: &Path,
) -> anyhow::Result<Output> {
    let output = output_of(command, what).await?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failure(what, &output, log_file))
    }
}

fn failure(what: &str, output: &Output, log_file: &Path) -> anyhow::Error {
    let mut message = format!("{what} failed ({})", output.status);
    for stream in [&output.stderr, &output.stdout] {
        let text = String::from_utf8_lossy(stream);
        if !text.trim().is_empty() {
            let _ = write!(message, "\n{}", text.trim_end());
        }
    }
    let _ = write!(
        message,
        "\nsee the PostgreSQL log at {}",
        log_file.display()
    );
    anyhow!(message)
}

/// Escapes a value for a single-quoted string in `postgresql.conf`.
fn conf_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "''")
}

/// Percent-encodes a URL query value, keeping `/` readable.
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                encoded.push(byte as char);
            }
            _ => {
                let _ = write!(encoded, "%{byte:02X}");
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_names_the_socket_directory_so_sqlx_connects_over_it() {
        let pg = EmbeddedPostgres {
            pg_ctl: PathBuf::from("/nonexistent/pg_ctl"),
            dir: PathBuf::from("/var/lib/tally desk+1/postgres"),
            data_dir: PathBuf::from("/var/lib/tally desk+1/postgres/data"),
            socket_dir: PathBuf::from("/var/lib/tally desk+1/postgres/run"),
            log_file: PathBuf::from("/var/lib/tally desk+1/postgres/postgres.log"),
            run_as: None,
            stopped: true,
            reused: false,
        };
        let url = pg.database_url();
        let options: PgConnectOptions = url.parse().expect("the URL parses as connect options");
        assert_eq!(
            options.get_socket(),
            Some(&PathBuf::from("/var/lib/tally desk+1/postgres/run")),
            "spaces and `+` survive the query string, or sqlx would look elsewhere: {url}"
        );
        assert_eq!(options.get_username(), SUPERUSER);
        assert_eq!(options.get_database(), Some(DATABASE));
        assert_eq!(options.get_port(), PORT, "the port names the socket file");
    }

    #[test]
    fn settings_values_are_escaped_for_postgresql_conf() {
        assert_eq!(conf_escape(r"/tmp/it's\here"), r"/tmp/it''s\\here");
    }
}
