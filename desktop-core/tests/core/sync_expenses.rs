//! Expenses between two desktops and a real server: a receipt filed offline reaches the server
//! once with its image, the approver sees it with the image and decides it offline, the
//! requester sees the decision; a submission the server refuses becomes a draft again.

use sqlx::PgPool;
use tallydesk_desktop_core::ErrorCode;
use tallydesk_desktop_core::expenses::{ClaimTarget, Expense, ExpenseQuery, ScannedReceipt};
use tallydesk_desktop_core::receipts::{image_path, images_dir, sha256_hex};
use tallydesk_shared::expense::ExpenseStatus;
use tallydesk_shared::sync::{ChangeOp, Entity};
use tallydesk_shared::{ExpenseId, Status};

use crate::expenses::{input_of, receipt_photo, scanned};
use crate::sync_server::{Desktop, ana_and_bob};

/// A receipt photo, as bytes.
fn photo_bytes() -> Vec<u8> {
    std::fs::read(receipt_photo("stationery-my")).expect("the receipt photo is readable")
}

/// The receipt photo as the scanner hands it over, without running OCR.
fn scanned_photo(merchant: &str, total: &str, photo: &[u8]) -> ScannedReceipt {
    let mut receipt = scanned(merchant, total, photo);
    receipt.image.media_type = "image/jpeg".into();
    receipt.source_name = "stationery-my.jpg".into();
    receipt.input.category = "meals".into();
    receipt
}

async fn file(desktop: &Desktop, merchant: &str, total: &str, target: ClaimTarget) -> Expense {
    let desk = &desktop.fixture.desk;
    let draft = desk
        .create_draft(&scanned_photo(merchant, total, &photo_bytes()))
        .await
        .expect("a draft from the receipt");
    desk.submit_expense(draft.id, &input_of(&draft), &target)
        .await
        .expect("the draft is filed")
}

async fn expenses(desktop: &Desktop) -> Vec<Expense> {
    desktop
        .fixture
        .desk
        .list_expenses(&ExpenseQuery::default())
        .await
        .unwrap()
        .expenses
}

/// How many times the server's change log holds each expense, by id.
async fn on_server(desktop: &Desktop) -> Vec<ExpenseId> {
    let mut cursor = 0;
    let mut ids = Vec::new();
    loop {
        let page = desktop.connection.sync_pull(cursor, 1000).await.unwrap();
        for change in page.changes {
            if change.entity == Entity::Expense && change.op == ChangeOp::Upsert {
                ids.push(ExpenseId::from_uuid(change.id));
            }
        }
        cursor = page.cursor;
        if !page.has_more {
            return ids;
        }
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_receipt_filed_offline_reaches_the_approver_once_with_its_image(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let photo = photo_bytes();

    // Bob files a receipt while offline: the claim ticket and the expense wait in his outbox.
    let filed = file(
        &bob,
        "Bistro Lumen",
        "42.50",
        ClaimTarget::New { title: None },
    )
    .await;
    bob.replica.refresh_status().await.unwrap();
    assert_eq!(
        bob.replica.status().unsent,
        2,
        "the new claim ticket and the expense are queued"
    );
    bob.sync().await;
    assert_eq!(bob.replica.status().unsent, 0);
    bob.sync().await;
    assert_eq!(
        on_server(&bob).await,
        vec![filed.id],
        "the server has it once"
    );
    assert_eq!(
        bob.connection.get_blob(&sha256_hex(&photo)).await.unwrap(),
        Some(photo.clone()),
        "the receipt image was uploaded before the expense"
    );

    // Ana, the approver, gets the expense and its image.
    ana.sync().await;
    let at_ana = ana.fixture.desk.expense(filed.id).await.unwrap();
    assert_eq!(at_ana.expense.status, ExpenseStatus::Submitted);
    assert_eq!(at_ana.expense.merchant.as_deref(), Some("Bistro Lumen"));
    assert_eq!(at_ana.expense.total.as_deref(), Some("42.50"));
    assert_eq!(at_ana.expense.category, "meals");
    assert_eq!(at_ana.expense.requester_id, bob.fixture.desk.me().id);
    assert!(at_ana.decidable, "an admin may decide it");
    let image = at_ana.expense.image.expect("the receipt image came along");
    assert_eq!(image.sha256, sha256_hex(&photo));
    assert!(image.width > 0 && image.height > 0, "{image:?}");
    let kept = image_path(&images_dir(ana.fixture.desk.store()), &image.sha256).unwrap();
    assert_eq!(std::fs::read(kept).unwrap(), photo);

    // She approves it offline; her desktop shows it at once, the server after her sync.
    ana.fixture
        .desk
        .decide_expense(filed.id, true, Some("fine"), at_ana.expense.version)
        .await
        .unwrap();
    assert_eq!(
        ana.fixture
            .desk
            .expense(filed.id)
            .await
            .unwrap()
            .expense
            .status,
        ExpenseStatus::Approved
    );
    ana.sync().await;
    assert_eq!(ana.replica.status().unsent, 0);
    assert_eq!(
        ana.fixture
            .desk
            .expense(filed.id)
            .await
            .unwrap()
            .expense
            .status,
        ExpenseStatus::Approved,
        "the server's copy says approved too"
    );

    bob.sync().await;
    let at_bob = expenses(&bob).await;
    assert_eq!(at_bob.len(), 1, "no duplicate: {at_bob:?}");
    let decision = at_bob[0].decision.clone().expect("bob sees the decision");
    assert!(decision.approved);
    assert_eq!(decision.note.as_deref(), Some("fine"));
    assert_eq!(decision.by_name, ana.fixture.desk.me().name);
    assert_eq!(
        at_bob[0].source_name.as_deref(),
        Some("stationery-my.jpg"),
        "what bob's desktop knew of the scan stays"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_submission_the_server_refuses_becomes_a_draft_again_with_the_reason(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let first = file(&bob, "Taxi Nord", "18.00", ClaimTarget::New { title: None }).await;
    let claim = first.ticket.clone().expect("filed on a new claim").id;
    bob.sync().await;
    ana.sync().await;

    // Ana resolves the claim; bob, offline, files a second receipt on it.
    ana.fixture
        .desk
        .transition(claim, Status::Resolved, None)
        .await
        .unwrap();
    let second = file(
        &bob,
        "Taxi Sud",
        "23.00",
        ClaimTarget::Existing { ticket_id: claim },
    )
    .await;
    assert_eq!(second.status, ExpenseStatus::Submitted);
    ana.sync().await;
    bob.sync().await;

    let review = bob.fixture.desk.expense(second.id).await.unwrap();
    assert_eq!(
        review.expense.status,
        ExpenseStatus::Draft,
        "nothing typed is lost: the refused expense is a draft again"
    );
    assert!(review.editable);
    assert_eq!(review.expense.merchant.as_deref(), Some("Taxi Sud"));
    let rejections = bob.replica.rejections(Some(claim)).await.unwrap();
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].code.as_str(), "ticket_closed");
    assert!(
        rejections[0].message.contains("resolved"),
        "the server says why: {}",
        rejections[0].message
    );
    assert_eq!(on_server(&ana).await, vec![first.id]);

    // Filed again on a new claim, it goes through.
    bob.fixture
        .desk
        .submit_expense(
            second.id,
            &input_of(&review.expense),
            &ClaimTarget::New { title: None },
        )
        .await
        .unwrap();
    bob.sync().await;
    let mut ids = on_server(&ana).await;
    ids.sort();
    let mut want = vec![first.id, second.id];
    want.sort();
    assert_eq!(ids, want);
    ana.sync().await;
    assert_eq!(
        ana.fixture
            .desk
            .expense(second.id)
            .await
            .unwrap()
            .expense
            .status,
        ExpenseStatus::Submitted
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn an_offline_decision_the_server_would_refuse_is_refused_here_and_approvals_sync(
    pool: PgPool,
) {
    let owner = pool.clone();
    let (_running, ana, bob) = ana_and_bob(pool).await;
    // Ana's tenant asks for two approvals above 10.00 (an admin's setting on the server).
    sqlx::query("update tenants set dual_approval_above_minor = 1000")
        .execute(&owner)
        .await
        .unwrap();

    // Bob, an agent, files on his own claim, then tries to approve it himself offline.
    let filed = file(
        &bob,
        "Hotel Azur",
        "142.00",
        ClaimTarget::New { title: None },
    )
    .await;
    assert!(
        !bob.fixture.desk.expense(filed.id).await.unwrap().decidable,
        "an approver is not offered their own expense"
    );
    let err = bob
        .fixture
        .desk
        .decide_expense(filed.id, true, None, filed.version)
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::OwnExpense,
        "as the server would answer"
    );
    bob.sync().await;
    bob.replica.refresh_status().await.unwrap();
    assert_eq!(
        bob.replica.status().rejected,
        0,
        "nothing refused was queued"
    );

    // Ana gets it with the rule the server applies: two approvals.
    ana.sync().await;
    let at_ana = ana.fixture.desk.expense(filed.id).await.unwrap();
    assert_eq!(
        at_ana.expense.approvals_required, 2,
        "142.00 is above 10.00"
    );
    assert!(at_ana.expense.approved_by.is_empty());
    assert!(at_ana.decidable);

    // Her approval, offline, is the first of two: it stays submitted, here and on the server.
    let first = ana
        .fixture
        .desk
        .decide_expense(filed.id, true, None, at_ana.expense.version)
        .await
        .unwrap();
    assert_eq!(
        first.status,
        ExpenseStatus::Submitted,
        "one approval of two"
    );
    assert_eq!(first.approved_by, vec![ana.fixture.desk.me().id]);
    let pending = ana.fixture.desk.expense(filed.id).await.unwrap();
    assert!(!pending.decidable, "she does not approve it twice");
    let twice = ana
        .fixture
        .desk
        .decide_expense(filed.id, true, None, first.version)
        .await
        .unwrap_err();
    assert_eq!(twice.code, ErrorCode::AlreadyApproved);
    ana.sync().await;
    ana.replica.refresh_status().await.unwrap();
    assert_eq!(
        ana.replica.status().rejected,
        0,
        "the server took her approval"
    );
    let synced = ana.fixture.desk.expense(filed.id).await.unwrap().expense;
    assert_eq!(synced.status, ExpenseStatus::Submitted);
    assert_eq!(synced.approved_by, vec![ana.fixture.desk.me().id], "1 of 2");
    assert!(synced.decision.is_none());

    bob.sync().await;
    let at_bob = bob.fixture.desk.expense(filed.id).await.unwrap().expense;
    assert_eq!(
        (at_bob.approved_by.len(), at_bob.approvals_required),
        (1, 2),
        "the requester sees 1 of 2 approvals"
    );
}
