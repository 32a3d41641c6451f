//! Receipts to expenses: scanning with the real OCR models, reviewing drafts, filing them on
//! claim tickets, decisions, the expenses list and its CSV.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tallydesk_desktop_core::expenses::{
    ClaimTarget, Expense, ExpenseInput, ExpenseItem, ExpenseQuery, Reading, ReceiptImage,
    ScannedReceipt,
};
use tallydesk_desktop_core::receipts::{ScanEvent, Scanner, images_dir, sha256_hex};
use tallydesk_desktop_core::{Clock, Desk, ErrorCode, Store};
use tallydesk_ocr::receipt::ParseOptions;
use tallydesk_shared::expense::ExpenseStatus;

use crate::Fixture;

/// One of the receipt photos the OCR crate's tests read (`ocr/tests/fixtures/receipts`).
pub(crate) fn receipt_photo(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ocr/tests/fixtures/receipts")
        .join(format!("{name}.jpg"));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// A receipt as the scanner would hand it over, without running OCR.
pub(crate) fn scanned(merchant: &str, total: &str, bytes: &[u8]) -> ScannedReceipt {
    ScannedReceipt {
        image: ReceiptImage {
            sha256: sha256_hex(bytes),
            media_type: "image/png".into(),
            width: 10,
            height: 20,
        },
        image_bytes: bytes.to_vec(),
        source_name: "receipt.png".into(),
        input: ExpenseInput {
            merchant: Some(merchant.into()),
            spent_on: Some("2026-03-14".into()),
            currency: "EUR".into(),
            total: Some(total.into()),
            category: "other".into(),
            version: 1,
            ..Default::default()
        },
        reading: Reading {
            width: 10,
            height: 20,
            lines: Vec::new(),
            fields: Vec::new(),
        },
    }
}

pub(crate) fn input_of(e: &Expense) -> ExpenseInput {
    ExpenseInput {
        merchant: e.merchant.clone(),
        spent_on: e.spent_on.map(|d| d.to_string()),
        currency: e.currency.clone(),
        total: e.total.clone(),
        subtotal: e.subtotal.clone(),
        tax: e.tax.clone(),
        category: e.category.clone(),
        items: e.items.clone(),
        note: e.note.clone(),
        version: e.version,
    }
}

async fn submitted(desk: &Desk, merchant: &str, total: &str, category: &str) -> Expense {
    let draft = desk
        .create_draft(&scanned(merchant, total, merchant.as_bytes()))
        .await
        .unwrap();
    let input = ExpenseInput {
        category: category.into(),
        ..input_of(&draft)
    };
    desk.submit_expense(draft.id, &input, &ClaimTarget::New { title: None })
        .await
        .unwrap()
}

#[tokio::test]
async fn dropped_files_become_drafts_and_bad_ones_get_their_own_error() {
    let f = Fixture::new(false).await;
    let drop = tempfile::tempdir().unwrap();
    let good = receipt_photo("stationery-my");
    let folder = drop.path().join("march");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(receipt_photo("restaurant-my"), folder.join("taxi.jpg")).unwrap();
    std::fs::write(folder.join("readme.txt"), "not a receipt").unwrap();
    let empty = drop.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let pdf = drop.path().join("invoice.jpg");
    std::fs::write(&pdf, b"%PDF-1.7\n...").unwrap();
    let text = drop.path().join("notes.png");
    std::fs::write(&text, "hello").unwrap();
    let gone = drop.path().join("vanished.jpg");

    let scanner = Scanner::new(
        vec![tallydesk_ocr::models::dir_from_env()],
        ParseOptions::default(),
    );
    let events = Mutex::new(Vec::new());
    let paths = [good.clone(), folder, empty, pdf, text, gone];
    scanner
        .scan(&f.desk, &paths, |e| events.lock().unwrap().push(e))
        .await;
    let events = events.into_inner().unwrap();

    let ScanEvent::Started { files } = &events[0] else {
        panic!("the scan starts by listing its files: {:?}", events[0]);
    };
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stationery-my.jpg",
            "taxi.jpg",
            "empty.jpg",
            "invoice.jpg",
            "notes.png",
            "vanished.jpg"
        ],
        "folders are searched for receipts only"
    );
    let failed: Vec<(u32, ErrorCode, Option<String>)> = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Failed { index, error } => Some((*index, error.code, error.field.clone())),
            _ => None,
        })
        .collect();
    let reason = |s: &str| Some(s.to_owned());
    assert_eq!(
        failed,
        [
            (2, ErrorCode::UnreadableFile, reason("empty")),
            (3, ErrorCode::UnreadableFile, reason("pdf")),
            (4, ErrorCode::UnreadableFile, reason("not_an_image")),
            (5, ErrorCode::UnreadableFile, reason("not_found")),
        ]
    );
    let read: Vec<&Expense> = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Read { expense, .. } => Some(expense.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(read.len(), 2);
    assert!(matches!(
        events.last(),
        Some(ScanEvent::Finished { read: 2, failed: 4 })
    ));
    // Every file reports its steps in order before its outcome.
    let steps: Vec<f32> = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Progress {
                index: 0, fraction, ..
            } => Some(*fraction),
            _ => None,
        })
        .collect();
    assert!(
        steps.len() >= 4 && steps.windows(2).all(|w| w[0] <= w[1]),
        "{steps:?}"
    );

    // The first receipt as printed: KEDAI BUKU MERANTI SDN BHD, 25/12/2018, RM 9.00.
    let first = read[0];
    assert_eq!(first.status, ExpenseStatus::Draft);
    assert_eq!(first.total.as_deref(), Some("9.00"));
    assert_eq!(
        first.spent_on.map(|d| d.to_string()).as_deref(),
        Some("2018-12-25")
    );
    assert_eq!(first.source_name.as_deref(), Some("stationery-my.jpg"));
    let image = first.image.as_ref().unwrap();
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(image.sha256, sha256_hex(&bytes));
    assert_eq!(image.media_type, "image/jpeg");
    let stored = images_dir(f.desk.store())
        .join(&image.sha256[..2])
        .join(&image.sha256);
    assert_eq!(
        std::fs::read(stored).unwrap(),
        bytes,
        "the image is kept by its hash"
    );

    // The review shows where each value came from.
    let review = f.desk.expense(first.id).await.unwrap();
    assert!(review.editable);
    let reading = review.reading.unwrap();
    assert_eq!((reading.width, reading.height), (image.width, image.height));
    let total = reading.fields.iter().find(|s| s.field == "total").unwrap();
    assert!(!total.lines.is_empty());
    for line in &total.lines {
        let read = &reading.lines[*line as usize];
        assert_eq!(read.quad.len(), 8);
        assert!(read.text.contains('9'), "{:?}", read.text);
    }
}

#[tokio::test]
async fn a_reviewed_draft_is_filed_on_a_new_claim_ticket() {
    let f = Fixture::new(false).await;
    let draft = f
        .desk
        .create_draft(&scanned("Cafe Lumiere", "12.00", b"cafe"))
        .await
        .unwrap();
    let corrected = ExpenseInput {
        merchant: Some("Café Lumière".into()),
        category: "meals".into(),
        items: vec![ExpenseItem {
            description: "Lunch".into(),
            quantity: Some("2".into()),
            amount: "11.00".into(),
        }],
        ..input_of(&draft)
    };
    let saved = f.desk.update_draft(draft.id, &corrected).await.unwrap();
    assert_eq!(saved.merchant.as_deref(), Some("Café Lumière"));
    assert_eq!(saved.version, draft.version + 1);
    assert_eq!(
        saved.warnings,
        ["The line items add up to 11.00, not 12.00 (the total)."],
        "a mismatch is shown"
    );

    // An edit made on the old version is refused and changes nothing.
    let err = f.desk.update_draft(draft.id, &corrected).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleVersion);

    // The warning does not stop it being filed.
    let filed = f
        .desk
        .submit_expense(
            draft.id,
            &input_of(&saved),
            &ClaimTarget::New { title: None },
        )
        .await
        .unwrap();
    assert_eq!(filed.status, ExpenseStatus::Submitted);
    let claim = filed.ticket.clone().unwrap();
    assert_eq!(claim.title, "Expense claim: Café Lumière, 2026-03-14");
    let ticket = f.desk.ticket(claim.id).await.unwrap().ticket;
    assert_eq!(ticket.category, "expense");
    let activity = f.desk.activity(claim.id).await.unwrap();
    assert!(
        activity
            .iter()
            .any(|a| a.action.as_str() == "expense.submitted")
    );
    let on_ticket = f
        .desk
        .list_expenses(&ExpenseQuery {
            ticket_id: Some(claim.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(on_ticket.expenses, std::slice::from_ref(&filed));

    // Submitted is final: corrections are new records.
    let err = f
        .desk
        .update_draft(filed.id, &input_of(&filed))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert_eq!(
        f.desk.open_claims().await.unwrap(),
        std::slice::from_ref(&claim)
    );

    // A second receipt goes onto the same claim.
    let second = f
        .desk
        .create_draft(&scanned("Taxi Rapide", "23.50", b"taxi"))
        .await
        .unwrap();
    let filed2 = f
        .desk
        .submit_expense(
            second.id,
            &input_of(&second),
            &ClaimTarget::Existing {
                ticket_id: claim.id,
            },
        )
        .await
        .unwrap();
    assert_eq!(filed2.ticket.unwrap().id, claim.id);
}

#[tokio::test]
async fn incomplete_or_bad_drafts_are_refused_with_the_field_named() {
    let f = Fixture::new(false).await;
    let draft = f
        .desk
        .create_draft(&scanned("Kiosk", "4.20", b"kiosk"))
        .await
        .unwrap();
    let base = input_of(&draft);
    for (input, field) in [
        (
            ExpenseInput {
                merchant: None,
                ..base.clone()
            },
            "merchant",
        ),
        (
            ExpenseInput {
                spent_on: Some(" ".into()),
                ..base.clone()
            },
            "spent_on",
        ),
        (
            ExpenseInput {
                spent_on: Some("2999-01-01".into()),
                ..base.clone()
            },
            "spent_on",
        ),
        (
            ExpenseInput {
                total: Some("4.2.0".into()),
                ..base.clone()
            },
            "total",
        ),
        (
            ExpenseInput {
                tax: Some("-1".into()),
                ..base.clone()
            },
            "tax",
        ),
        (
            ExpenseInput {
                currency: "Euros".into(),
                ..base.clone()
            },
            "currency",
        ),
    ] {
        let err = f
            .desk
            .submit_expense(draft.id, &input, &ClaimTarget::New { title: None })
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidField, "{err:?}");
        assert_eq!(err.field.as_deref(), Some(field), "{err:?}");
    }
    let stale = ExpenseInput {
        version: base.version - 1,
        ..base.clone()
    };
    let err = f
        .desk
        .submit_expense(draft.id, &stale, &ClaimTarget::New { title: None })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleVersion);
    let review = f.desk.expense(draft.id).await.unwrap();
    assert_eq!(review.expense, draft, "nothing changed");
    assert!(
        f.desk.open_claims().await.unwrap().is_empty(),
        "no ticket was made"
    );

    // A draft may be saved incomplete, and thrown away.
    let partial = ExpenseInput {
        merchant: None,
        total: None,
        ..base
    };
    f.desk.update_draft(draft.id, &partial).await.unwrap();
    f.desk.discard_draft(draft.id).await.unwrap();
    let err = f.desk.expense(draft.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

/// Makes `expense` one that `name` (a new agent) filed, as if it came from the server.
async fn filed_by_someone_else(desk: &Desk, expense: &Expense, name: &str) {
    let other = tallydesk_shared::UserId::new().to_string();
    sqlx::query("insert into users (id, name, role, updated_at) values (?, ?, 'agent', 0)")
        .bind(&other)
        .bind(name)
        .execute(&desk.store().pool)
        .await
        .unwrap();
    sqlx::query("update expenses set requester_id = ? where id = ?")
        .bind(&other)
        .bind(expense.id.to_string())
        .execute(&desk.store().pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn approvers_decide_and_the_list_filters_totals_and_exports() {
    let f = Fixture::new(false).await;
    let taxi = submitted(&f.desk, "Taxi Rapide", "23.50", "taxi").await;
    let lunch = submitted(&f.desk, "Café, \"Lumière\"", "12.00", "meals").await;
    let cab = submitted(&f.desk, "City Cab", "7.25", "taxi").await;
    filed_by_someone_else(&f.desk, &taxi, "Tess").await;
    filed_by_someone_else(&f.desk, &cab, "Carl").await;
    f.desk
        .create_draft(&scanned("Draft Kiosk", "1.00", b"draft"))
        .await
        .unwrap();

    let err = f
        .desk
        .decide_expense(cab.id, false, Some("  "), cab.version)
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("note"), "a rejection says why");
    let rejected = f
        .desk
        .decide_expense(cab.id, false, Some("No receipt total visible"), cab.version)
        .await
        .unwrap();
    assert_eq!(rejected.status, ExpenseStatus::Rejected);
    let decision = rejected.decision.unwrap();
    assert!(!decision.approved);
    assert_eq!(decision.note.as_deref(), Some("No receipt total visible"));
    let err = f
        .desk
        .decide_expense(cab.id, true, None, rejected.version)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden, "decided once");
    let approved = f
        .desk
        .decide_expense(taxi.id, true, None, taxi.version)
        .await
        .unwrap();
    assert_eq!(approved.status, ExpenseStatus::Approved);
    let claim = approved.ticket.unwrap().id;
    let actions: Vec<String> = f
        .desk
        .activity(claim)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action.as_str().to_owned())
        .collect();
    assert!(
        actions.contains(&"expense.approved".to_owned()),
        "{actions:?}"
    );

    let all = f
        .desk
        .list_expenses(&ExpenseQuery::default())
        .await
        .unwrap();
    assert_eq!(all.expenses.len(), 4);
    assert_eq!(all.totals.len(), 1);
    assert_eq!(
        (
            all.totals[0].currency.as_str(),
            all.totals[0].total.as_str(),
            all.totals[0].count
        ),
        ("EUR", "35.50", 2),
        "drafts and rejected expenses are not counted"
    );
    let merchants = |q: ExpenseQuery| {
        let desk = f.desk.clone();
        async move {
            let mut m: Vec<String> = desk
                .list_expenses(&q)
                .await
                .unwrap()
                .expenses
                .into_iter()
                .filter_map(|e| e.merchant)
                .collect();
            m.sort();
            m
        }
    };
    assert_eq!(
        merchants(ExpenseQuery {
            category: Some("taxi".into()),
            ..Default::default()
        })
        .await,
        ["City Cab", "Taxi Rapide"]
    );
    assert_eq!(
        merchants(ExpenseQuery {
            merchant: Some("cab".into()),
            ..Default::default()
        })
        .await,
        ["City Cab"]
    );
    assert_eq!(
        merchants(ExpenseQuery {
            status: Some(ExpenseStatus::Submitted),
            ..Default::default()
        })
        .await,
        ["Café, \"Lumière\""]
    );
    let day = |d: &str| Some(d.parse().unwrap());
    assert_eq!(
        merchants(ExpenseQuery {
            from: day("2026-03-15"),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        merchants(ExpenseQuery {
            from: day("2026-03-14"),
            to: day("2026-03-14"),
            merchant: Some("%".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new(),
        "wildcards are matched literally"
    );
    let err = f
        .desk
        .list_expenses(&ExpenseQuery {
            from: day("2026-03-15"),
            to: day("2026-03-01"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("to"));

    let csv = f
        .desk
        .expenses_csv(&ExpenseQuery {
            category: Some("meals".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(lines[0].starts_with("date,merchant,category,status,total,tax,currency,ticket"));
    assert!(
        lines[1].starts_with(
            "2026-03-14,\"Café, \"\"Lumière\"\"\",meals,submitted,12.00,,EUR,\"#2 Expense claim: Café, \"\"Lumière\"\", 2026-03-14\",Test User,"
        ),
        "{}",
        lines[1]
    );
    assert_eq!(lines.len(), 3, "one row and the final line break");
    let _ = lunch;
}

#[tokio::test]
async fn requesters_see_their_own_expenses_and_cannot_decide() {
    let f = Fixture::new(false).await;
    let mine = submitted(&f.desk, "Hotel Nord", "120.00", "lodging").await;
    let theirs = submitted(&f.desk, "Someone Else's Hotel", "99.00", "lodging").await;
    let other = tallydesk_shared::UserId::new().to_string();
    sqlx::query("insert into users (id, name, role, updated_at) values (?, 'Other', 'agent', 0)")
        .bind(&other)
        .execute(&f.desk.store().pool)
        .await
        .unwrap();
    sqlx::query("update expenses set requester_id = ? where id = ?")
        .bind(&other)
        .bind(theirs.id.to_string())
        .execute(&f.desk.store().pool)
        .await
        .unwrap();
    let path: &Path = &f.db_path();
    sqlx::query("update users set role = 'requester' where id <> ?")
        .bind(&other)
        .execute(&f.desk.store().pool)
        .await
        .unwrap();
    let store = Store::open(path).await.unwrap();
    let requester = Desk::open(store, Clock::system(), "Test User", false)
        .await
        .unwrap();
    let review = requester.expense(mine.id).await.unwrap();
    assert!(!review.decidable);
    let err = requester
        .decide_expense(mine.id, true, None, mine.version)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let listed = requester
        .list_expenses(&ExpenseQuery::default())
        .await
        .unwrap();
    let ids: Vec<_> = listed.expenses.iter().map(|e| e.id).collect();
    assert_eq!(ids, [mine.id], "not someone else's");
    let err = requester.expense(theirs.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn nobody_decides_an_expense_they_filed() {
    let f = Fixture::new(false).await;
    let own = submitted(&f.desk, "Hotel Nord", "120.00", "lodging").await;
    let review = f.desk.expense(own.id).await.unwrap();
    assert!(
        !review.decidable,
        "an approver is not offered their own expense to decide"
    );
    for (approve, note) in [(true, None), (false, Some("Wrong hotel"))] {
        let err = f
            .desk
            .decide_expense(own.id, approve, note, own.version)
            .await
            .unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::OwnExpense,
            "the server's code, so an offline decision the server would refuse is refused here"
        );
        assert!(err.message.contains("another approver"), "{}", err.message);
    }
    let after = f.desk.expense(own.id).await.unwrap().expense;
    assert_eq!(after.status, ExpenseStatus::Submitted, "nothing decided");
    assert_eq!(after.version, own.version, "nothing written");

    filed_by_someone_else(&f.desk, &own, "Olga").await;
    assert!(f.desk.expense(own.id).await.unwrap().decidable);
    let approved = f
        .desk
        .decide_expense(own.id, true, None, own.version)
        .await
        .unwrap();
    assert_eq!(
        approved.status,
        ExpenseStatus::Approved,
        "someone else's: decided"
    );
}
