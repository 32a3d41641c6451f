//! The private cluster the server runs when no database URL is configured: it starts, serves
//! sqlx, stops, and keeps its data across restarts.

use std::path::PathBuf;

use tallydesk_server::embedded_pg::EmbeddedPostgres;

/// A fresh directory under the system temp dir (short, so the socket path stays within limits).
fn fresh_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    std::env::temp_dir().join(format!("tallydesk-epg-{}-{nanos}", std::process::id()))
}

#[tokio::test]
async fn embedded_cluster_serves_sqlx_and_keeps_data_across_restarts() {
    let dir = fresh_dir();

    let pg = EmbeddedPostgres::start(&dir)
        .await
        .expect("the cluster initialises and starts");
    let pool = sqlx::PgPool::connect(&pg.database_url())
        .await
        .expect("database_url() connects to the `tallydesk` database");
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&pool)
        .await
        .expect("select 1");
    assert_eq!(one, 1);
    sqlx::query("create table kept (note text not null)")
        .execute(&pool)
        .await
        .expect("create table");
    sqlx::query("insert into kept (note) values ('still here')")
        .execute(&pool)
        .await
        .expect("insert");
    pool.close().await;
    pg.stop().await.expect("the cluster stops");

    let pg = EmbeddedPostgres::start(&dir)
        .await
        .expect("the existing cluster starts again");
    let pool = sqlx::PgPool::connect(&pg.database_url())
        .await
        .expect("reconnect after restart");
    let note: String = sqlx::query_scalar("select note from kept")
        .fetch_one(&pool)
        .await
        .expect(
            "the table created before the restart is still there: the data lives in the directory",
        );
    assert_eq!(note, "still here");
    pool.close().await;
    pg.stop().await.expect("the cluster stops again");

    std::fs::remove_dir_all(&dir).expect("remove the cluster directory");
}
