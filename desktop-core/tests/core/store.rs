//! The store: created, reopened, and honest about damaged or busy files.

use std::io::Write as _;

use tallydesk_desktop_core::store::set_aside;
use tallydesk_desktop_core::{Clock, Desk, ErrorCode, Store};
use tallydesk_shared::api::CreateTicket;

use crate::Fixture;

#[tokio::test]
async fn data_survives_a_restart_and_the_user_stays_the_admin() {
    let f = Fixture::new(false).await;
    let me = f.desk.me().clone();
    let created = f
        .desk
        .create_ticket(&CreateTicket {
            title: "Keep me".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    f.desk.store().close().await;

    let store = Store::open(&f.db_path()).await.unwrap();
    let desk = Desk::open(store, Clock::system(), "Someone Else", false)
        .await
        .unwrap();
    assert_eq!(desk.me(), me, "the same local user, still admin");
    assert_eq!(
        desk.ticket(created.id).await.unwrap().ticket.title,
        "Keep me"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_reported_as_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workspace.db");
    let garbage =
        b"this is not a database, it is a shopping list: eggs, milk, bread, and more eggs.....";
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&garbage.repeat(100))
        .unwrap();

    let err = Store::open(&path).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseCorrupt, "{err:?}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage.repeat(100),
        "the file is not changed"
    );

    let kept = set_aside(&path).unwrap();
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        garbage.repeat(100),
        "the old file is kept, never deleted"
    );
    let store = Store::open(&path)
        .await
        .expect("a fresh workspace opens in its place");
    Desk::open(store, Clock::system(), "Me", false)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_database_held_by_another_program_is_reported_as_locked() {
    let f = Fixture::new(false).await;
    f.desk.store().close().await;
    // Another program is in the middle of writing the file.
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite:{}", f.db_path().display()))
        .await
        .unwrap();
    sqlx::query("begin immediate")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("update users set name = 'other'")
        .execute(&mut other)
        .await
        .unwrap();

    let err = Store::open(&f.db_path()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseLocked, "{err:?}");
    assert!(err.message.contains("another program"), "{}", err.message);
}

use sqlx::Connection as _;
