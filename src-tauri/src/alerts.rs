//! SLA alerts on the desktop: a watcher that sleeps until the next at-risk or breach moment
//! (or until the workspace changes), native notifications that open their ticket, and the
//! tray icon with its count and menu.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Local, Utc};
use serde::{Deserialize, Serialize};
use tallydesk_desktop_core::sla::{SlaAttention, SlaWatch};
use tallydesk_shared::TicketId;
use tallydesk_shared::sla::SlaState;
use tauri::menu::{Menu, MenuBuilder, MenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::workspace::Workspace;

/// What the alerts know beyond the workspace: mute, the ticket on screen, the tray.
pub struct Alerts {
    started: DateTime<Utc>,
    muted_until: Mutex<Option<DateTime<Utc>>>,
    viewing: Mutex<Option<TicketId>>,
    tray: Mutex<Option<TrayIcon<tauri::Wry>>>,
    wake: tokio::sync::Notify,
}

/// Do-not-disturb, as the UI and the tray menu set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Mute {
    Off,
    OneHour,
    UntilTomorrow,
}

/// The window is asked to show this ticket (a notification or the tray menu was clicked).
pub const OPEN_TICKET_EVENT: &str = "open-ticket";

/// Alerts were muted or resumed from the tray menu; the payload is until when, or null.
pub const MUTED_EVENT: &str = "alerts-muted";

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            started: Utc::now(),
            muted_until: Mutex::new(None),
            viewing: Mutex::new(None),
            tray: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl Alerts {
    /// The ticket on screen does not notify.
    pub fn set_viewing(&self, ticket: Option<TicketId>) {
        *self.viewing.lock().unwrap_or_else(|e| e.into_inner()) = ticket;
    }

    pub fn set_mute(&self, mute: Mute, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let until = match mute {
            Mute::Off => None,
            Mute::OneHour => Some(now + Duration::hours(1)),
            Mute::UntilTomorrow => {
                let tomorrow = now.with_timezone(&Local).date_naive() + Duration::days(1);
                tomorrow
                    .and_hms_opt(8, 0, 0)
                    .and_then(|t| t.and_local_timezone(Local).earliest())
                    .map(|t| t.with_timezone(&Utc))
            }
        };
        *self.muted_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
        self.wake.notify_one();
        until
    }

    /// Until when alerts are muted, if they are at `now`.
    pub fn muted_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.muted_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .filter(|until| now < *until)
    }

    fn muted(&self, now: DateTime<Utc>) -> bool {
        self.muted_until(now).is_some()
    }

    fn viewing(&self) -> Option<TicketId> {
        *self.viewing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Builds the tray and runs the watcher for the life of the app, once the first screen is shown.
pub fn start(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        crate::startup::first_screen_shown().await;
        let tray = app.clone();
        // Built on the main thread, which this waits for.
        match tauri::async_runtime::spawn_blocking(move || build_tray(&tray)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "no tray icon"),
            Err(e) => tracing::warn!(error = %e, "no tray icon"),
        }
        watch(app).await;
    });
}

async fn watch(app: AppHandle) {
    let alerts = app.state::<Alerts>();
    // The workspace opens at start-up (or after the person starts afresh).
    let desk = loop {
        match app.state::<Workspace>().desk().await {
            Ok(desk) => break desk,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    };
    let mut changes = desk.changes();
    let mut first = true;
    loop {
        let watch = match desk.watch_sla(alerts.started).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "could not check SLAs");
                SlaWatch::default()
            }
        };
        let now = Utc::now();
        announce(&app, &alerts, &watch, now, first);
        first = false;
        update_tray(&app, &watch.attention);
        let sleep = watch.next_change_at.map(|at| {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            // A moment that is due now is looked at again straight away.
            tokio::time::sleep(wait)
        });
        tokio::select! {
            () = async { match sleep { Some(s) => s.await, None => std::future::pending().await } } => {}
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = alerts.wake.notified() => {}
        }
    }
}

fn announce(app: &AppHandle, alerts: &Alerts, watch: &SlaWatch, now: DateTime<Utc>, first: bool) {
    if alerts.muted(now) {
        return;
    }
    let viewing = alerts.viewing();
    for alert in watch.alerts.iter().filter(|a| Some(a.ticket_id) != viewing) {
        notify(app, alert.message(now), Some(alert.ticket_id), alert.state);
    }
    if first && watch.missed > 0 {
        notify(
            app,
            format!(
                "{} SLA {} while Tallydesk was closed; see the tray or the queue",
                watch.missed,
                if watch.missed == 1 { "event" } else { "events" }
            ),
            None,
            SlaState::Breached,
        );
    }
}

/// Shows a native notification: on Linux clicking it opens the ticket; macOS and Windows
/// show it through their own notification centres, which notify-rust reaches without actions.
fn notify(app: &AppHandle, message: String, ticket: Option<TicketId>, state: SlaState) {
    let summary = match state {
        SlaState::Breached => "SLA breached",
        _ => "SLA at risk",
    };
    let mut notification = notify_rust::Notification::new();
    notification
        .appname("Tallydesk")
        .summary(summary)
        .body(&message);
    show(app, notification, message, ticket);
}

#[cfg(target_os = "linux")]
fn show(
    app: &AppHandle,
    mut notification: notify_rust::Notification,
    message: String,
    ticket: Option<TicketId>,
) {
    notification.action("default", "Open ticket");
    let app = app.clone();
    // Waiting for the click blocks; one thread per notification, ended when it is closed.
    std::thread::spawn(move || match notification.show() {
        Ok(handle) => {
            tracing::info!(%message, "notified");
            handle.wait_for_action(|action| {
                if action == "default" {
                    open_ticket(&app, ticket);
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "the notification could not be shown"),
    });
}

#[cfg(not(target_os = "linux"))]
fn show(
    app: &AppHandle,
    notification: notify_rust::Notification,
    message: String,
    _ticket: Option<TicketId>,
) {
    let notification = as_this_app(app, notification);
    // Showing blocks on the notification centre.
    std::thread::spawn(move || match notification.show() {
        Ok(_) => tracing::info!(%message, "notified"),
        Err(e) => tracing::warn!(error = %e, "the notification could not be shown"),
    });
}

/// Files the notification under the installed app (a `tauri build`, which sets
/// `custom-protocol`), which Windows knows once its installer has run: Windows drops toasts
/// from apps it does not know, so a development build keeps notify-rust's default, PowerShell.
#[cfg(target_os = "windows")]
fn as_this_app(
    app: &AppHandle,
    mut notification: notify_rust::Notification,
) -> notify_rust::Notification {
    if cfg!(feature = "custom-protocol") {
        notification.app_id(&app.config().identifier);
    }
    notification
}

/// Files notifications under the app's bundle once it is one (a `tauri build`, which sets
/// `custom-protocol`); a development build's appear as Finder's, notify-rust's default.
#[cfg(target_os = "macos")]
fn as_this_app(
    app: &AppHandle,
    notification: notify_rust::Notification,
) -> notify_rust::Notification {
    if cfg!(feature = "custom-protocol") {
        // Set once per process; later calls only say that it is set.
        let _ = notify_rust::set_application(&app.config().identifier);
    }
    notification
}

fn open_ticket(app: &AppHandle, ticket: Option<TicketId>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
    if let Some(id) = ticket {
        let _ = app.emit(OPEN_TICKET_EVENT, id);
    }
}

const MUTE_HOUR: &str = "mute-hour";
const MUTE_TOMORROW: &str = "mute-tomorrow";
const UNMUTE: &str = "unmute";
const OPEN: &str = "open";
const QUIT: &str = "quit";

fn build_tray(app: &AppHandle) -> tauri::Result<()> {
    let menu = tray_menu(app, &[])?;
    let mut builder = TrayIconBuilder::with_id("sla")
        .tooltip("Tallydesk")
        .menu(&menu)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()));
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let tray = builder.build(app)?;
    *app.state::<Alerts>()
        .tray
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(tray);
    Ok(())
}

fn tray_menu<R: Runtime>(app: &AppHandle<R>, attention: &[SlaAttention]) -> tauri::Result<Menu<R>> {
    let mut menu = MenuBuilder::new(app);
    for a in attention.iter().take(8) {
        let state = if a.state == SlaState::Breached {
            "breached"
        } else {
            "at risk"
        };
        let item = MenuItem::with_id(
            app,
            format!("ticket:{}", a.ticket_id),
            format!("#{} {} ({state})", a.number, a.title),
            true,
            None::<&str>,
        )?;
        menu = menu.item(&item);
    }
    if !attention.is_empty() {
        menu = menu.separator();
    }
    menu.text(OPEN, "Open Tallydesk")
        .text(MUTE_HOUR, "Mute alerts for 1 hour")
        .text(MUTE_TOMORROW, "Mute alerts until tomorrow")
        .text(UNMUTE, "Resume alerts")
        .separator()
        .text(QUIT, "Quit Tallydesk")
        .build()
}

fn on_menu(app: &AppHandle, id: &str) {
    let alerts = app.state::<Alerts>();
    let mute = |mute: Mute| {
        let until = alerts.set_mute(mute, Utc::now());
        let _ = app.emit(MUTED_EVENT, until);
    };
    match id {
        OPEN => open_ticket(app, None),
        MUTE_HOUR => mute(Mute::OneHour),
        MUTE_TOMORROW => mute(Mute::UntilTomorrow),
        UNMUTE => mute(Mute::Off),
        QUIT => app.exit(0),
        other => {
            if let Some(ticket) = other.strip_prefix("ticket:").and_then(|t| t.parse().ok()) {
                open_ticket(app, Some(ticket));
            }
        }
    }
}

/// "Tallydesk: 2 breached, 1 at risk".
fn tooltip(attention: &[SlaAttention]) -> String {
    let breached = attention
        .iter()
        .filter(|a| a.state == SlaState::Breached)
        .count();
    let at_risk = attention.len() - breached;
    match (breached, at_risk) {
        (0, 0) => "Tallydesk: no SLA due".to_owned(),
        (b, 0) => format!("Tallydesk: {b} breached"),
        (0, r) => format!("Tallydesk: {r} at risk"),
        (b, r) => format!("Tallydesk: {b} breached, {r} at risk"),
    }
}

fn update_tray(app: &AppHandle, attention: &[SlaAttention]) {
    let alerts = app.state::<Alerts>();
    let tray = alerts.tray.lock().unwrap_or_else(|e| e.into_inner());
    let Some(tray) = tray.as_ref() else { return };
    let _ = tray.set_tooltip(Some(tooltip(attention)));
    match tray_menu(app, attention) {
        Ok(menu) => {
            let _ = tray.set_menu(Some(menu));
        }
        Err(e) => tracing::warn!(error = %e, "the tray menu could not be updated"),
    }
}

/// Whether closing the window should keep the app in the tray: there is a tray to come back
/// from. On Linux that needs a StatusNotifier host on the session bus.
pub fn tray_available(app: &AppHandle) -> bool {
    let has_icon = app
        .state::<Alerts>()
        .tray
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    has_icon && tray_host()
}

#[cfg(target_os = "linux")]
fn tray_host() -> bool {
    let ask = || -> Result<bool, dbus::Error> {
        let conn = dbus::blocking::Connection::new_session()?;
        let bus = conn.with_proxy(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            std::time::Duration::from_millis(500),
        );
        let (owned,): (bool,) = bus.method_call(
            "org.freedesktop.DBus",
            "NameHasOwner",
            ("org.kde.StatusNotifierWatcher",),
        )?;
        Ok(owned)
    };
    ask().unwrap_or(false)
}

/// The menu bar (macOS) and the notification area (Windows) are always there.
#[cfg(not(target_os = "linux"))]
fn tray_host() -> bool {
    true
}
