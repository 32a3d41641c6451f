//! Demo content: realistic people, customers and tickets for a first look at Tallydesk.
//! The server's `seed-demo` and the desktop's first start both use it.

use crate::permission::Role;
use crate::workflow::Status;

/// (login, display name, role); the first is the admin.
pub const PEOPLE: [(&str, &str, Role); 7] = [
    ("alex", "Alex Morgan", Role::Admin),
    ("dana", "Dana Whitfield", Role::Agent),
    ("sam", "Sam Okafor", Role::Agent),
    ("olive", "Olive Brandt", Role::Observer),
    ("riley", "Riley Chen", Role::Requester),
    ("priya", "Priya Shah", Role::Requester),
    ("marco", "Marco Rossi", Role::Requester),
];

/// (name, email, company)
pub const CUSTOMERS: [(&str, &str, &str); 6] = [
    (
        "Northwind Traders",
        "it@northwind.example",
        "Northwind Traders Ltd",
    ),
    (
        "Globex Logistics",
        "helpdesk@globex.example",
        "Globex Corporation",
    ),
    ("Initech Finance", "ap@initech.example", "Initech"),
    (
        "Umbrella Clinics",
        "ops@umbrella.example",
        "Umbrella Health",
    ),
    (
        "Stark Fabrication",
        "facilities@stark.example",
        "Stark Industries",
    ),
    (
        "Wayne Foundation",
        "grants@wayne.example",
        "Wayne Enterprises",
    ),
];

/// (title, description, category, priority, status, public reply, internal note)
pub type DemoTicket = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Status,
    Option<&'static str>,
    Option<&'static str>,
);

pub const TICKETS: [DemoTicket; 16] = [
    (
        "Laptop won't boot after update",
        "Black screen with a blinking cursor since last night's update.",
        "hardware",
        "high",
        Status::Open,
        None,
        None,
    ),
    (
        "VPN disconnects every 20 minutes",
        "Happens on hotel wifi and at home. Client version 5.2.",
        "software",
        "medium",
        Status::InProgress,
        Some("Can you send the client log from Help > Export logs?"),
        Some("Looks like the idle timeout on the new gateway."),
    ),
    (
        "Access to the finance shared drive",
        "I moved to the finance team and need read access to Finance/Reports.",
        "access",
        "medium",
        Status::Open,
        None,
        None,
    ),
    (
        "Invoice 2024-117 charged twice",
        "Our card was charged twice for the March invoice.",
        "billing",
        "urgent",
        Status::InProgress,
        Some("Sorry about that, we are checking with the payment provider."),
        Some("Provider confirms duplicate capture; refund pending."),
    ),
    (
        "Printer on 3rd floor jams on tray 2",
        "Every print from tray 2 jams after a few pages.",
        "hardware",
        "low",
        Status::OnHold,
        Some("A technician visit is booked."),
        None,
    ),
    (
        "Taxi receipts from the Berlin trip",
        "Three taxi receipts from the Berlin customer visit.",
        "expense",
        "medium",
        Status::Resolved,
        Some("Approved and sent to payroll."),
        None,
    ),
    (
        "Outlook keeps asking for password",
        "Since the password change Outlook prompts every few minutes.",
        "software",
        "high",
        Status::Resolved,
        Some("Cleared the cached credentials; it should stop now."),
        Some("Third one this week: stale keychain entries."),
    ),
    (
        "New starter: accounts for Jamie",
        "Jamie starts Monday in Sales and needs email, CRM and laptop.",
        "access",
        "high",
        Status::Closed,
        Some("All set; the laptop is at reception."),
        None,
    ),
    (
        "Monitor flickers on USB-C dock",
        "External monitor flickers when the laptop is on the dock.",
        "hardware",
        "medium",
        Status::InProgress,
        None,
        Some("Dock firmware 1.4 has a known issue."),
    ),
    (
        "Refund request for unused seats",
        "We reduced our team from 40 to 32 seats last month.",
        "billing",
        "medium",
        Status::OnHold,
        Some("Waiting for your finance contact to confirm the seat count."),
        None,
    ),
    (
        "Hotel receipt for the Lisbon workshop",
        "Two nights, receipt attached.",
        "expense",
        "low",
        Status::Open,
        None,
        None,
    ),
    (
        "CRM export times out",
        "Exporting all contacts fails after 60 seconds.",
        "software",
        "medium",
        Status::Open,
        None,
        None,
    ),
    (
        "Phone screen cracked",
        "Dropped my work phone; still works but the glass is cracked.",
        "hardware",
        "low",
        Status::Closed,
        Some("Replacement ordered and delivered."),
        None,
    ),
    (
        "MFA codes not arriving by SMS",
        "Codes arrive 10 minutes late or not at all.",
        "access",
        "urgent",
        Status::InProgress,
        Some("Please switch to the authenticator app meanwhile."),
        Some("Carrier incident open: INC-2291."),
    ),
    (
        "Conference dinner receipt",
        "Team dinner at the partner conference, 6 people.",
        "expense",
        "medium",
        Status::Resolved,
        None,
        None,
    ),
    (
        "Wi-Fi slow in meeting room B",
        "Video calls drop in room B every afternoon.",
        "general",
        "medium",
        Status::Open,
        None,
        None,
    ),
];
