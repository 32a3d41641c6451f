//! Customers and deletions made offline reach the server and the other desktop through the
//! outbox: edits of different fields by two people both stay, a deletion removes the record
//! everywhere, and an edit of a customer deleted meanwhile is refused with the reason.

use sqlx::PgPool;
use tallydesk_desktop_core::ErrorCode;
use tallydesk_shared::api::{CreateCustomer, CreateTicket, PatchCustomer};
use tallydesk_shared::sync::Intent;

use crate::sync_server::ana_and_bob;

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn customers_and_deletions_made_offline_reach_the_other_desktop(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;

    // Ana, offline, adds a customer and a ticket about them.
    let globex = ana
        .fixture
        .desk
        .create_customer(&CreateCustomer {
            name: "Globex".into(),
            email: Some("it@globex.example".into()),
            ..Default::default()
        })
        .await
        .expect("admins may add customers while signed in");
    let ticket = ana
        .fixture
        .desk
        .create_ticket(&CreateTicket {
            title: "Globex printer".into(),
            customer_id: Some(globex.id),
            ..Default::default()
        })
        .await
        .unwrap();
    ana.sync().await;
    bob.sync().await;
    let at_bob = bob.fixture.desk.customer(globex.id).await.unwrap();
    assert_eq!(at_bob.customer.name, "Globex");
    assert_eq!(at_bob.customer.email.as_deref(), Some("it@globex.example"));
    assert_eq!(
        bob.fixture
            .desk
            .ticket(ticket.id)
            .await
            .unwrap()
            .ticket
            .customer_id,
        Some(globex.id)
    );

    // Both change the customer offline, each another field: both changes stay.
    bob.fixture
        .desk
        .update_customer(
            globex.id,
            &PatchCustomer {
                phone: Some(Some("+33 1 23 45 67 89".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ana.fixture
        .desk
        .update_customer(
            globex.id,
            &PatchCustomer {
                notes: Some(Some("Key account".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    bob.sync().await;
    ana.sync().await;
    bob.sync().await;
    for desktop in [&ana, &bob] {
        let c = desktop
            .fixture
            .desk
            .customer(globex.id)
            .await
            .unwrap()
            .customer;
        assert_eq!(c.phone.as_deref(), Some("+33 1 23 45 67 89"));
        assert_eq!(c.notes.as_deref(), Some("Key account"));
        assert_eq!(c.email.as_deref(), Some("it@globex.example"));
    }

    // Ana deletes the ticket and the customer; bob, offline, renames the customer.
    ana.fixture.desk.delete_ticket(ticket.id).await.unwrap();
    ana.fixture.desk.delete_customer(globex.id).await.unwrap();
    bob.fixture
        .desk
        .update_customer(
            globex.id,
            &PatchCustomer {
                name: Some("Globex Corporation".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ana.sync().await;
    bob.sync().await;

    assert_eq!(
        bob.fixture.desk.ticket(ticket.id).await.unwrap_err().code,
        ErrorCode::NotFound,
        "the deleted ticket is gone from bob's desktop too"
    );
    for desktop in [&ana, &bob] {
        let customers = desktop.fixture.desk.customers(None).await.unwrap();
        assert!(
            customers.iter().all(|c| c.id != globex.id),
            "the deleted customer is gone: {customers:?}"
        );
    }
    let refused = bob.replica.rejections(None).await.unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(matches!(refused[0].intent, Intent::CustomerUpdate(_)));
    assert_eq!(refused[0].ticket_id, None);
    assert_eq!(refused[0].code.as_str(), "not_found", "{:?}", refused[0]);
    assert_eq!(bob.replica.status().unsent, 0);

    // An agent may not delete customers, signed in or not.
    let other = bob
        .fixture
        .desk
        .create_customer(&CreateCustomer {
            name: "Initech".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        bob.fixture
            .desk
            .delete_customer(other.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
}
