//! Demo data: there on first start, clearly marked, and removable without touching the user's own.

use tallydesk_desktop_core::model::TicketQuery;
use tallydesk_shared::Status;
use tallydesk_shared::api::{CreateCustomer, CreateTicket};

use crate::Fixture;

#[tokio::test]
async fn a_first_start_has_demo_tickets_in_every_state() {
    let f = Fixture::new(true).await;
    let info = f.desk.info().await.unwrap();
    assert!(info.has_demo_data);
    let page = f.desk.list_tickets(&TicketQuery::default()).await.unwrap();
    assert!(page.total >= 10, "a realistic queue: {}", page.total);
    for status in Status::ALL {
        let q = TicketQuery {
            status: Some(status),
            ..Default::default()
        };
        assert!(
            f.desk.list_tickets(&q).await.unwrap().total > 0,
            "some ticket is {status}"
        );
    }
    assert!(f.desk.customers(None).await.unwrap().len() >= 5);
}

#[tokio::test]
async fn removing_demo_data_keeps_everything_the_user_made() {
    let f = Fixture::new(true).await;
    let demo_customer = f.desk.customers(None).await.unwrap()[0].clone();
    let mine = f
        .desk
        .create_ticket(&CreateTicket {
            title: "My real ticket".into(),
            customer_id: Some(demo_customer.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let my_customer = f
        .desk
        .create_customer(&CreateCustomer {
            name: "Real Co".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    f.desk
        .add_comment(mine.id, "a real comment", false)
        .await
        .unwrap();

    f.desk.remove_demo_data().await.unwrap();
    let info = f.desk.info().await.unwrap();
    assert!(!info.has_demo_data);
    let page = f.desk.list_tickets(&TicketQuery::default()).await.unwrap();
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        [mine.id],
        "only the user's ticket is left"
    );
    let kept = f.desk.ticket(mine.id).await.unwrap();
    assert_eq!(
        kept.ticket.customer_id, None,
        "the reference to a demo customer is cleared"
    );
    assert_eq!(f.desk.comments(mine.id).await.unwrap().len(), 1);
    assert_eq!(
        f.desk
            .customers(None)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [my_customer.id]
    );
    assert!(
        !f.desk.activity(mine.id).await.unwrap().is_empty(),
        "the user's trail stays"
    );
}

#[tokio::test]
async fn only_an_admin_removes_the_demo_data() {
    let f = Fixture::new(true).await;
    f.desk
        .set_role(tallydesk_shared::Role::Observer)
        .await
        .unwrap();
    let refused = f.desk.remove_demo_data().await.unwrap_err();
    assert_eq!(refused.code, tallydesk_desktop_core::ErrorCode::Forbidden);
    assert!(
        f.desk.info().await.unwrap().has_demo_data,
        "a refused removal removes nothing"
    );
}
