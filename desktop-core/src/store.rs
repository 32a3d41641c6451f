//! The local SQLite store: one file in the platform data directory, WAL, foreign keys on,
//! migrations embedded in the binary.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{DeskError, DeskResult, ErrorCode};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// An open, migrated workspace database.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating when missing) and migrates the database at `path`.
    ///
    /// A file that another program holds is [`ErrorCode::DatabaseLocked`]; a damaged one, or
    /// one that is not a database, is [`ErrorCode::DatabaseCorrupt`]. Neither changes the file.
    pub async fn open(path: &Path) -> DeskResult<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                DeskError::new(
                    ErrorCode::Internal,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(3));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let check: String = sqlx::query_scalar("pragma quick_check")
            .fetch_one(&pool)
            .await?;
        if check != "ok" {
            pool.close().await;
            return Err(DeskError::new(
                ErrorCode::DatabaseCorrupt,
                format!("the workspace database is damaged ({check})"),
            ));
        }
        // Take the write lock once, so a file another program is writing is reported now.
        let probe = async {
            let mut conn = pool.acquire().await?;
            sqlx::query("begin immediate").execute(&mut *conn).await?;
            sqlx::query("rollback").execute(&mut *conn).await?;
            Ok::<_, sqlx::Error>(())
        };
        if let Err(e) = probe.await {
            pool.close().await;
            return Err(e.into());
        }
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(e.into());
        }
        Ok(Store {
            pool,
            path: path.to_owned(),
        })
    }

    /// A write transaction that takes the write lock at once (`begin immediate`). A deferred
    /// one that read first fails at once with "database is locked", without waiting, when
    /// another connection wrote meanwhile (WAL snapshots cannot be upgraded).
    pub async fn write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool.begin_with("begin immediate").await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Moves a locked or damaged database (and its WAL files) aside, keeping it, so a fresh
/// workspace can start. Returns where the old file now is.
pub fn set_aside(path: &Path) -> DeskResult<PathBuf> {
    let stamp = Utc::now().format("%Y%m%d-%H%M%S");
    let kept = path.with_extension(format!("{stamp}.kept.db"));
    std::fs::rename(path, &kept).map_err(|e| {
        DeskError::new(
            ErrorCode::Internal,
            format!("cannot move {} aside: {e}", path.display()),
        )
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            let mut kept_side = kept.as_os_str().to_owned();
            kept_side.push(suffix);
            let _ = std::fs::rename(&side, PathBuf::from(kept_side));
        }
    }
    Ok(kept)
}
