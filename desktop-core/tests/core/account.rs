//! Signing in from the desktop, end to end: a real Tallydesk server on a throwaway Postgres
//! database, the certified `oidc-provider`, the OS keychain, and a browser that fills in the
//! provider's forms. See `tallydesk_testkit::desktop`.

use chrono::TimeDelta;
use sqlx::PgPool;
use tallydesk_desktop_core::ErrorCode;
use tallydesk_desktop_core::account::{Account, Connection, KeychainKey, KeychainState, Session};
use tallydesk_shared::{Action, Role};

use tallydesk_testkit::desktop::{
    AheadClock, Behaviour, TestBrowser, keychain, setup, start_builtin_server, start_server,
};
use tallydesk_testkit::oidc::OidcProvider;

use crate::Fixture;

fn signed_in(account: &Account) -> &Session {
    match account {
        Account::SignedIn(session) => session,
        other => panic!("expected to be signed in, not {other:?}"),
    }
}

/// A desktop (its own workspace) connected to `server`.
async fn desktop(browser: &TestBrowser, clock: &AheadClock) -> (Fixture, Connection) {
    let fixture = Fixture::new(false).await;
    let connection = Connection::open(fixture.desk.clone(), setup(browser, clock))
        .await
        .expect("the account opens");
    (fixture, connection)
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_person_signs_in_stays_signed_in_across_restarts_and_signs_out(pool: PgPool) {
    let provider = OidcProvider::start().await;
    let served = start_server(&pool, vec![provider.issuer.clone()]).await;
    let server = served.url.clone();
    let browser = TestBrowser::new(Behaviour::SignIn("ana".into()));
    let clock = AheadClock::default();
    let (fixture, connection) = desktop(&browser, &clock).await;
    assert_eq!(
        connection.account(),
        Account::Local,
        "a new desktop is local"
    );

    let info = connection.connect_server(&server).await.expect("connects");
    assert_eq!(info.url, server);
    assert_eq!(
        info.providers.len(),
        1,
        "the server offers its one provider"
    );
    assert_eq!(info.providers[0].issuer, provider.issuer);
    assert!(!info.providers[0].builtin);

    let account = connection
        .sign_in(&server, &provider.issuer)
        .await
        .expect("signs in");
    let session = signed_in(&account).clone();
    assert_eq!(session.user.email.as_deref(), Some("ana@example.com"));
    assert_eq!(session.tenants.len(), 1, "the first user claims the server");
    assert_eq!(session.tenants[0].tenant_name, "Default");
    assert_eq!(session.role, Role::Admin);
    assert_eq!(
        session.keychain,
        KeychainState::Stored,
        "the keychain is there"
    );
    assert!(
        !session.can_change_password,
        "an outside provider keeps the password"
    );
    assert_eq!(connection.account(), account);
    browser.wait_for_pages(1).await;
    assert!(
        browser.pages()[0].contains("You're signed in"),
        "the browser tab says to go back to the app: {:?}",
        browser.pages()
    );
    let info = fixture.desk.info().await.unwrap();
    assert_eq!(info.me.role, Role::Admin);
    assert!(
        info.can.contains(&Action::ManageMembers),
        "an admin manages members"
    );

    // The token works against the API, in the active tenant.
    let members = connection.members().await.expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].email.as_deref(), Some("ana@example.com"));

    // The refresh token is in the keychain; using it rotates it.
    let key = KeychainKey {
        server_url: server.clone(),
        issuer: provider.issuer.clone(),
        subject: "ana".into(),
    };
    let first = keychain()
        .load(&key)
        .await
        .unwrap()
        .expect("a refresh token is kept");
    clock.advance(TimeDelta::minutes(9));
    connection
        .members()
        .await
        .expect("members after the access token's refresh");
    let second = keychain().load(&key).await.unwrap().expect("still kept");
    assert_ne!(
        first, second,
        "the rotated refresh token replaces the used one"
    );

    // A restart resumes the session from the keychain.
    let again = Connection::open(fixture.desk.clone(), setup(&browser, &clock))
        .await
        .expect("reopens");
    let resumed = signed_in(&again.account()).clone();
    assert_eq!(resumed.user, session.user);
    assert_eq!(resumed.tenant_id, session.tenant_id);
    again.members().await.expect("the resumed session works");
    let opened = browser.opened().len();
    let pages = browser.pages().len();

    let account = again.sign_out().await.expect("signs out");
    match &account {
        Account::SignedOut {
            server_url, notice, ..
        } => {
            assert_eq!(server_url, &server, "the server stays connected");
            assert_eq!(notice, &None, "signing out on purpose needs no notice");
        }
        other => panic!("expected signed out, not {other:?}"),
    }
    assert_eq!(
        keychain().load(&key).await.unwrap(),
        None,
        "the keychain forgets the refresh token"
    );
    assert!(
        browser.opened()[opened..]
            .iter()
            .any(|u| u.contains("/session/end")),
        "the provider's session is ended too (RP-initiated logout): {:?}",
        browser.opened()
    );
    browser.wait_for_pages(pages + 1).await;
    assert!(
        browser
            .pages()
            .last()
            .is_some_and(|p| p.contains("signed out")),
        "the provider sent the browser back to the app, which says so: {:?}",
        browser.pages().last()
    );
    let err = again.members().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotSignedIn);

    let restarted = Connection::open(fixture.desk.clone(), setup(&browser, &clock))
        .await
        .unwrap();
    assert!(
        matches!(restarted.account(), Account::SignedOut { .. }),
        "signed out stays signed out after a restart"
    );
    let local = restarted.disconnect_server().await.unwrap();
    assert_eq!(local, Account::Local);
    assert_eq!(
        fixture.desk.me().role,
        Role::Admin,
        "local: the user is admin again"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_member_of_several_tenants_switches_and_acts_with_each_role(pool: PgPool) {
    let provider = OidcProvider::start().await;
    let served = start_server(&pool, vec![provider.issuer.clone()]).await;
    let server = served.url.clone();
    let ana_browser = TestBrowser::new(Behaviour::SignIn("ana".into()));
    let clock = AheadClock::default();
    let (_ana_desk, ana) = desktop(&ana_browser, &clock).await;
    ana.sign_in(&server, &provider.issuer)
        .await
        .expect("ana signs in");

    // Bob signs in before he belongs anywhere: told to ask for an invitation.
    let bob_browser = TestBrowser::new(Behaviour::SignIn("bob".into()));
    let (bob_desk, bob) = desktop(&bob_browser, &clock).await;
    let err = bob.sign_in(&server, &provider.issuer).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NoMembership, "{err:?}");
    assert!(
        err.message.contains("Ask an admin to invite you"),
        "{}",
        err.message
    );
    assert!(
        matches!(
            bob.account(),
            Account::SignedOut {
                notice: Some(_),
                ..
            }
        ),
        "the sign-in screen shows why: {:?}",
        bob.account()
    );

    let invitation = ana
        .invite("bob@example.com", Role::Observer)
        .await
        .expect("ana invites bob");
    assert_eq!(invitation.role, Role::Observer);
    assert_eq!(ana.invitations().await.unwrap().len(), 1);

    // Signing in again after the invitation needs no second trip through the browser.
    let opened = bob_browser.opened().len();
    let account = bob
        .sign_in(&server, &provider.issuer)
        .await
        .expect("bob signs in");
    assert_eq!(
        bob_browser.opened().len(),
        opened,
        "the kept sign-in was used"
    );
    let session = signed_in(&account).clone();
    assert_eq!(session.role, Role::Observer);
    let info = bob_desk.desk.info().await.unwrap();
    assert_eq!(info.me.role, Role::Observer, "the desk acts as an observer");
    assert!(
        !info.can.contains(&Action::EditTicket),
        "observers change nothing"
    );
    let err = bob
        .invite("carol@example.com", Role::Agent)
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::Forbidden,
        "only admins invite: {err:?}"
    );

    // Bob also runs a tenant of his own.
    let own = uuid::Uuid::now_v7();
    sqlx::query("insert into tenants (id, name, created_at) values ($1, 'Bob''s Shop', now())")
        .bind(own)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("insert into tenant_counters (tenant_id) values ($1)")
        .bind(own)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, 'admin', now())",
    )
    .bind(own)
    .bind(session.user.id.as_uuid())
    .execute(&pool)
    .await
    .unwrap();
    let pages = bob_browser.pages().len();
    bob.sign_out().await.unwrap();
    bob_browser.wait_for_pages(pages + 1).await;
    let account = bob
        .sign_in(&server, &provider.issuer)
        .await
        .expect("bob signs in again");
    let session = signed_in(&account).clone();
    assert_eq!(
        session.tenants.len(),
        2,
        "both tenants: {:?}",
        session.tenants
    );
    let default = session
        .tenants
        .iter()
        .find(|m| m.tenant_name == "Default")
        .expect("still in Default")
        .tenant_id;

    let account = bob
        .switch_tenant(tallydesk_shared::TenantId::from_uuid(own))
        .await
        .expect("switches");
    assert_eq!(signed_in(&account).role, Role::Admin);
    assert_eq!(
        bob_desk.desk.me().role,
        Role::Admin,
        "the desk acts as the admin now"
    );
    let members = bob.members().await.expect("bob's own members");
    assert_eq!(members.len(), 1, "only bob is in his shop: {members:?}");
    let account = bob.switch_tenant(default).await.expect("switches back");
    assert_eq!(signed_in(&account).role, Role::Observer);
    assert_eq!(bob_desk.desk.me().role, Role::Observer);
    let members = bob.members().await.expect("Default's members");
    assert_eq!(members.len(), 2, "ana and bob are in Default: {members:?}");
    let restarted = Connection::open(bob_desk.desk.clone(), setup(&bob_browser, &clock))
        .await
        .unwrap();
    assert_eq!(
        signed_in(&restarted.account()).tenant_id,
        default,
        "the active tenant is kept across restarts"
    );
    let err = bob
        .switch_tenant(tallydesk_shared::TenantId::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);

    // Ana promotes bob in Default, then removes him.
    let members = ana.members().await.unwrap();
    let bob_id = members
        .iter()
        .find(|m| m.email.as_deref() == Some("bob@example.com"))
        .expect("bob is a member")
        .user_id;
    let member = ana.set_member_role(bob_id, Role::Agent).await.unwrap();
    assert_eq!(member.role, Role::Agent);
    ana.remove_member(bob_id).await.expect("ana removes bob");
    assert!(
        ana.members()
            .await
            .unwrap()
            .iter()
            .all(|m| m.user_id != bob_id)
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn each_failure_is_named_so_the_person_knows_what_to_do(pool: PgPool) {
    let provider = OidcProvider::start().await;
    // A second provider the server lists but nobody can reach.
    let unreachable = "http://127.0.0.1:9".to_owned();
    let served = start_server(&pool, vec![provider.issuer.clone(), unreachable.clone()]).await;
    let server = served.url.clone();
    let browser = TestBrowser::new(Behaviour::Deny);
    let clock = AheadClock::default();
    let (_fixture, connection) = desktop(&browser, &clock).await;

    let err = connection
        .sign_in(&server, &provider.issuer)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConsentDenied, "{err:?}");

    browser.set(Behaviour::TamperState("ana".into()));
    let err = connection
        .sign_in(&server, &provider.issuer)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::StateMismatch, "{err:?}");
    assert!(
        browser
            .pages()
            .last()
            .is_some_and(|p| p.contains("did not complete")),
        "the browser tab says it failed: {:?}",
        browser.pages().last()
    );

    browser.set(Behaviour::SignIn("ana".into()));
    clock.advance(TimeDelta::hours(1));
    let err = connection
        .sign_in(&server, &provider.issuer)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ClockSkew, "{err:?}");
    assert!(
        err.message.contains("Check this computer's clock"),
        "{}",
        err.message
    );
    clock.advance(TimeDelta::hours(-1));

    let err = connection.sign_in(&server, &unreachable).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::IdpUnreachable, "{err:?}");

    let err = connection
        .sign_in(&server, "https://elsewhere.example")
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::InvalidField,
        "not a provider of this server: {err:?}"
    );

    let err = connection.connect_server("not a url").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidField);
    let err = connection
        .connect_server("http://127.0.0.1:9")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ServerUnreachable, "{err:?}");
    let err = connection
        .connect_server(&provider.issuer)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotATallydeskServer, "{err:?}");

    // Nothing comes back from the browser: cancelled by the person, or timed out.
    browser.set(Behaviour::Ignore);
    let pending = {
        let connection = connection.clone();
        let server = server.clone();
        let issuer = provider.issuer.clone();
        tokio::spawn(async move { connection.sign_in(&server, &issuer).await })
    };
    while browser.opened().len() < 4 {
        tokio::task::yield_now().await;
    }
    connection.cancel_sign_in();
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::SignInCancelled, "{err:?}");

    let mut quick = setup(&browser, &clock);
    quick.sign_in_timeout = std::time::Duration::from_millis(300);
    let (_other, impatient) = {
        let fixture = Fixture::new(false).await;
        let connection = Connection::open(fixture.desk.clone(), quick).await.unwrap();
        (fixture, connection)
    };
    let err = impatient
        .sign_in(&server, &provider.issuer)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BrowserClosed, "{err:?}");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_tallydesk_account_signs_in_with_the_servers_own_issuer_and_changes_its_password(
    pool: PgPool,
) {
    let email = "ana@example.com";
    let served = start_builtin_server(&pool, email, "correct horse battery").await;
    let server = served.url.clone();
    let browser = TestBrowser::new(Behaviour::Password {
        email: email.into(),
        password: "correct horse battery".into(),
    });
    let clock = AheadClock::default();
    let (fixture, connection) = desktop(&browser, &clock).await;

    let info = connection.connect_server(&server).await.expect("connects");
    assert_eq!(info.providers.len(), 1);
    assert!(info.providers[0].builtin, "the server's own accounts");
    assert_eq!(
        info.providers[0].issuer, server,
        "its issuer is the server's URL"
    );

    let account = connection
        .sign_in(&server, &server)
        .await
        .expect("signs in with email and password");
    let session = signed_in(&account).clone();
    assert_eq!(session.user.email.as_deref(), Some(email));
    assert_eq!(
        session.role,
        Role::Admin,
        "create-admin made her admin of Default"
    );
    assert!(session.can_change_password, "the server keeps her password");
    assert_eq!(fixture.desk.me().role, Role::Admin);

    let err = connection
        .change_password("not my password", "a brand new passphrase")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::WrongPassword, Some("current_password")),
        "the server's own code reaches the UI, naming the field to correct: {err:?}"
    );
    assert_eq!(
        err.field.as_deref(),
        Some("current_password"),
        "the form marks the field at fault"
    );
    connection
        .change_password("correct horse battery", "a brand new passphrase")
        .await
        .expect("changes the password");
    connection
        .members()
        .await
        .expect("this sign-in still works");

    let pages = browser.pages().len();
    connection.sign_out().await.expect("signs out");
    browser.wait_for_pages(pages + 1).await;
    assert!(
        browser
            .pages()
            .last()
            .is_some_and(|p| p.contains("signed out")),
        "the issuer ended its session and sent the browser back: {:?}",
        browser.pages().last()
    );

    browser.set(Behaviour::Password {
        email: email.into(),
        password: "a brand new passphrase".into(),
    });
    let account = connection
        .sign_in(&server, &server)
        .await
        .expect("signs in with the new password");
    assert_eq!(signed_in(&account).user, session.user);
}

#[tokio::test]
async fn the_keychain_keeps_loads_and_forgets_a_secret() {
    let keychain = keychain();
    assert_eq!(
        keychain.state(),
        KeychainState::Stored,
        "a Secret Service is running"
    );
    let key = KeychainKey {
        server_url: "https://helpdesk.example".into(),
        issuer: "https://idp.example".into(),
        subject: format!("keychain-test-{}", uuid::Uuid::now_v7()),
    };
    assert_eq!(keychain.load(&key).await.unwrap(), None, "nothing kept yet");
    keychain.save(&key, "first secret").await.expect("saves");
    assert_eq!(
        keychain.load(&key).await.unwrap().as_deref(),
        Some("first secret")
    );
    keychain
        .save(&key, "second secret")
        .await
        .expect("replaces");
    assert_eq!(
        keychain.load(&key).await.unwrap().as_deref(),
        Some("second secret")
    );
    keychain.delete(&key).await.expect("deletes");
    assert_eq!(keychain.load(&key).await.unwrap(), None, "forgotten");
    keychain.delete(&key).await.expect("deleting twice is fine");
}
