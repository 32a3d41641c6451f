//! Load benchmark of the ticket API. Not a test: it prints figures and asserts nothing about time.
//!
//! Run it with `scripts/bench` (`scripts/bench --help` lists the options). It
//! 1. starts a database: a private PostgreSQL cluster in a fresh temporary directory, or, when
//!    `DATABASE_URL` is set, a database `tallydesk_bench_<pid>` made on that server for the run;
//! 2. serves the API in this process on 127.0.0.1, trusting the test token issuer
//!    (`tallydesk_testkit::issuer`), which also runs here;
//! 3. seeds 100,000 tickets in one tenant and 10,000 in another (the first user claims the
//!    installation, the second makes a tenant, both invite agents and requesters, then the tickets
//!    and about one comment per five tickets are bulk-inserted with SQL);
//! 4. measures each scenario with 64 connections (HTTP/1.1 keep-alive, each sending one request
//!    after another) for 10 seconds after a one-second warm-up, acting as tenant A's admin;
//! 5. prints requests/s and p50/p99 latency per scenario, then removes the database.
//!
//! Any request that fails (transport error or non-2xx answer) makes the run fail.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tallydesk_server::auth::TENANT_HEADER;
use tallydesk_server::db;
use tallydesk_shared::api::{CreateInvitation, CreateTenant, CreateTicket, Me, Tenant};
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{Role, TenantId, TicketId, UserId};
use tokio::task::JoinSet;
use uuid::Uuid;

use tallydesk_testkit::bench::{Machine, Place, ServedApi, grouped, uuid_v7_sql};
use tallydesk_testkit::issuer::Issuer;

/// Requests before this much time has passed in a scenario are not measured.
const WARM_UP: Duration = Duration::from_secs(1);

/// Seeds the ticket API with two tenants and measures it under concurrent load.
#[derive(Debug, Parser)]
#[command(name = "scripts/bench", bin_name = "scripts/bench")]
struct Args {
    /// Seconds each scenario is measured, after a one-second warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Concurrent connections, each sending one request after another.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1000))]
    connections: u32,
    /// Tickets in tenant A, the one under load.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    tickets: u32,
    /// Tickets in tenant B, whose rows row-level security must keep out of tenant A's answers.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    other_tickets: u32,
    /// Scenarios to run, in this order (default: all).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// The first page of the queue (newest first, 50 tickets).
    List,
    /// Open high-priority hardware tickets, first page.
    Filter,
    /// Full-text search for a word that a few hundred tickets contain.
    Search,
    /// One ticket, picked at random.
    Get,
    /// A new ticket.
    Create,
}

impl Scenario {
    const ALL: [Scenario; 5] = [
        Scenario::List,
        Scenario::Filter,
        Scenario::Search,
        Scenario::Get,
        Scenario::Create,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::List => "list",
            Scenario::Filter => "filter",
            Scenario::Search => "search",
            Scenario::Get => "get",
            Scenario::Create => "create",
        }
    }

    fn request(self) -> &'static str {
        match self {
            Scenario::List => "GET /api/v1/tickets (the newest 50)",
            Scenario::Filter => "GET /api/v1/tickets?status=open&priority=high&category=hardware",
            Scenario::Search => "GET /api/v1/tickets?q=<word> (8 words in turn)",
            Scenario::Get => "GET /api/v1/tickets/<id> (any of tenant A's, at random)",
            Scenario::Create => "POST /api/v1/tickets",
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // sqlx's slow-statement warnings would bury the table; RUST_LOG=warn shows them.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::query=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    tallydesk_testkit::bench::in_own_database(async |place| bench(&args, place).await).await
}

async fn bench(args: &Args, place: &Place) -> anyhow::Result<()> {
    let owner = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(place.options().clone())
        .await
        .context("connecting to the benchmark database")?;
    db::migrate(&owner).await?;
    let api = ServedApi::start(&owner, args.connections).await;
    let (issuer, base) = (&api.issuer, api.base.clone());

    let machine = Machine::describe(&owner, place).await?;
    let seeded = seed(args, &owner, issuer, &base).await?;
    let target = Arc::new(Target {
        base: base.clone(),
        authorization: format!("Bearer {}", seeded.token),
        tenant: seeded.tenant.to_string(),
        ids: seeded.ids.clone(),
    });
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios.clone()
    };
    let mut measured = Vec::new();
    for scenario in scenarios {
        measured.push(measure(scenario, args, &target).await?);
    }

    println!();
    println!("Tallydesk API benchmark");
    print!("{machine}");
    print!("{seeded}");
    println!(
        "  load      {} connections (HTTP/1.1 keep-alive), each scenario {} s after a {} s warm-up, \
         as tenant A's admin",
        args.connections,
        args.seconds,
        WARM_UP.as_secs()
    );
    for (i, outcome) in measured.iter().enumerate() {
        let label = if i == 0 { "scenarios" } else { "" };
        let scenario = outcome.scenario;
        println!("  {label:<9} {:<7} {}", scenario.name(), scenario.request());
    }
    println!();
    println!(
        "{:<8} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "scenario", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for outcome in &measured {
        println!("{outcome}");
    }
    println!();
    println!(
        "  latency: from sending a request to its answer's last byte, successful requests only; \
         errors include the warm-up"
    );

    api.stop().await;
    owner.close().await;

    let failed: Vec<&Outcome> = measured.iter().filter(|o| o.errors > 0).collect();
    if failed.is_empty() {
        return Ok(());
    }
    for outcome in &failed {
        eprintln!(
            "{}: {} failed requests, for example:",
            outcome.scenario.name(),
            outcome.errors
        );
        for sample in &outcome.samples {
            eprintln!("  {sample}");
        }
    }
    Err(anyhow!(
        "{} requests failed",
        failed.iter().map(|o| o.errors).sum::<u64>()
    ))
}

// ---- Seeding -------------------------------------------------------------------------------

/// Things people ask for help with, and the category each belongs to (the tenant defaults).
const PRODUCTS: [(&str, &str); 45] = [
    ("the printer", "hardware"),
    ("my laptop", "hardware"),
    ("the docking station", "hardware"),
    ("my second monitor", "hardware"),
    ("the scanner", "hardware"),
    ("my keyboard", "hardware"),
    ("the webcam", "hardware"),
    ("the meeting room projector", "hardware"),
    ("the badge reader", "hardware"),
    ("the warehouse tablet", "hardware"),
    ("my desk phone", "hardware"),
    ("the label printer", "hardware"),
    ("Outlook", "software"),
    ("Excel", "software"),
    ("Teams", "software"),
    ("Chrome", "software"),
    ("the CRM", "software"),
    ("SharePoint", "software"),
    ("OneDrive", "software"),
    ("the ERP", "software"),
    ("Word", "software"),
    ("the PDF editor", "software"),
    ("the design tool", "software"),
    ("the VPN", "access"),
    ("my account", "access"),
    ("the shared drive", "access"),
    ("the HR portal", "access"),
    ("single sign-on", "access"),
    ("the admin console", "access"),
    ("the guest Wi-Fi", "access"),
    ("two-factor login", "access"),
    ("the invoice tool", "billing"),
    ("the payment page", "billing"),
    ("the subscription page", "billing"),
    ("the billing export", "billing"),
    ("the customer statement run", "billing"),
    ("the expense app", "expense"),
    ("the mileage claim form", "expense"),
    ("the receipt upload", "expense"),
    ("the corporate card feed", "expense"),
    ("the intranet", "general"),
    ("the room booking system", "general"),
    ("the parking system", "general"),
    ("the office kiosk", "general"),
    ("the staff newsletter", "general"),
];

const PROBLEMS: [&str; 24] = [
    "keeps crashing",
    "will not start",
    "is very slow",
    "shows an error on startup",
    "does not sync",
    "keeps asking for my password",
    "cannot connect",
    "freezes when saving",
    "stopped working",
    "lost all my settings",
    "is missing from the menu",
    "times out",
    "rejects my login",
    "shows the wrong totals",
    "cannot open attachments",
    "drops the connection",
    "says my licence expired",
    "shows garbled text",
    "will not update",
    "is out of disk space",
    "logs me out every few minutes",
    "prints blank pages",
    "shows a blank screen",
    "is stuck on loading",
];

const SITES: [&str; 16] = [
    "Lisbon",
    "Amsterdam",
    "Berlin",
    "Dublin",
    "Madrid",
    "Warsaw",
    "Leeds",
    "Lyon",
    "Porto",
    "Prague",
    "Vienna",
    "Zurich",
    "Oslo",
    "Helsinki",
    "Tallinn",
    "Riga",
];

const MOMENTS: [&str; 8] = [
    "this morning",
    "yesterday",
    "last week",
    "the last update",
    "Monday",
    "the office move",
    "the password change",
    "the weekend",
];

const DEPARTMENTS: [&str; 10] = [
    "Finance",
    "Sales",
    "Marketing",
    "Engineering",
    "Support",
    "Legal",
    "Operations",
    "Warehouse",
    "HR",
    "Procurement",
];

/// Product names that about a third of descriptions mention, one each, so each is in a few
/// hundred tickets: what full-text search looks for.
const RARE_TERMS: [&str; 96] = [
    "ThinkPad",
    "MacBook",
    "OptiPlex",
    "EliteBook",
    "Chromebook",
    "YubiKey",
    "Jabra",
    "Plantronics",
    "DocuSign",
    "Salesforce",
    "HubSpot",
    "Jira",
    "Confluence",
    "Dropbox",
    "Slack",
    "Zoom",
    "Webex",
    "QuickBooks",
    "Xero",
    "NetSuite",
    "Workday",
    "Okta",
    "Citrix",
    "Fortinet",
    "Meraki",
    "Ubiquiti",
    "Kyocera",
    "Epson",
    "Ricoh",
    "Xerox",
    "Lexmark",
    "Logitech",
    "Cisco",
    "Avaya",
    "Mitel",
    "Aruba",
    "Juniper",
    "Synology",
    "QNAP",
    "Veeam",
    "Acronis",
    "Sophos",
    "Bitdefender",
    "Kaspersky",
    "Malwarebytes",
    "CrowdStrike",
    "SentinelOne",
    "Tableau",
    "Looker",
    "Snowflake",
    "Databricks",
    "Figma",
    "Photoshop",
    "Illustrator",
    "InDesign",
    "AutoCAD",
    "SolidWorks",
    "Revit",
    "SketchUp",
    "Matlab",
    "RStudio",
    "Jupyter",
    "PyCharm",
    "IntelliJ",
    "Xcode",
    "Postman",
    "Bitbucket",
    "GitLab",
    "Jenkins",
    "Trello",
    "Asana",
    "Notion",
    "Evernote",
    "Miro",
    "Lucidchart",
    "Smartsheet",
    "Airtable",
    "Calendly",
    "Mailchimp",
    "Marketo",
    "Pardot",
    "Zendesk",
    "Freshdesk",
    "Gusto",
    "Expensify",
    "Concur",
    "Coupa",
    "Ariba",
    "BambooHR",
    "Docker",
    "Kubernetes",
    "Terraform",
    "Ansible",
    "Grafana",
    "Splunk",
    "Datadog",
];

/// The words the search scenario rotates through, all from [`RARE_TERMS`].
const SEARCH_WORDS: [&str; 8] = [
    "ThinkPad",
    "YubiKey",
    "QuickBooks",
    "Kyocera",
    "Salesforce",
    "DocuSign",
    "Synology",
    "Expensify",
];

/// `format()` templates: %1$s product, %2$s problem, %3$s site, %4$s moment, %5$s department,
/// %6$s a sentence naming a rare term (descriptions only; often empty).
const TITLE_TEMPLATES: [&str; 6] = [
    "%1$s %2$s",
    "%1$s %2$s in %3$s",
    "%5$s: %1$s %2$s",
    "%1$s %2$s since %4$s",
    "%1$s %2$s again",
    "Please help: %1$s %2$s",
];

const DESCRIPTION_TEMPLATES: [&str; 5] = [
    "Since %4$s %1$s %2$s. It affects the whole %5$s team in %3$s.%6$s Could someone have a look?",
    "Hi, %1$s %2$s on my machine since %4$s.%6$s I already restarted twice and it did not help. Thanks!",
    "Several people in %5$s report that %1$s %2$s.%6$s This is blocking our work in the %3$s office.",
    "%1$s %2$s again.%6$s Steps: open it, sign in, wait about a minute. First seen %4$s in %3$s.",
    "Hello, %1$s %2$s whenever I try to finish my tasks.%6$s I am in the %3$s office, %5$s department.",
];

const RARE_TEMPLATES: [&str; 4] = [
    " We only see this with the %s.",
    " It started after we installed %s.",
    " The %s integration is affected too.",
    " Colleagues using %s have the same problem.",
];

const HOLD_REASONS: [&str; 4] = [
    "Waiting for the customer to reply",
    "Waiting for a replacement part",
    "Waiting for the vendor",
    "Scheduled for the next maintenance window",
];

const AGENT_COMMENTS: [&str; 6] = [
    "Thanks for reporting. Could you send a screenshot of the error?",
    "I restarted the service on our side; please try again.",
    "Checked with the vendor: this is a known issue with %s and a fix is coming.",
    "Looks related to %s; escalating to the second line.",
    "Fixed after clearing the local cache. Closing if we hear nothing.",
    "Same root cause as last month, see the %s logs.",
];

const REQUESTER_COMMENTS: [&str; 5] = [
    "Still happening here, same as before.",
    "Thanks, that fixed it!",
    "I tried again this morning and it failed again.",
    "Attached the screenshot you asked for.",
    "It also fails with %s now.",
];

/// Share of tickets that get a comment.
const COMMENT_RATE: f64 = 0.2;

/// Inserts tickets 1..=$2 into tenant $1, created between $3 and $4, spread evenly so numbers
/// follow creation time, with words and people drawn from $5..$17 (see `vocabulary`). Older tickets are mostly resolved or closed; the last 30 days' are
/// mostly being worked on.
fn insert_tickets_sql() -> String {
    let id = uuid_v7_sql("t.created_at");
    format!(
        "with vocabulary as (
             select $5::text[] as products, $6::text[] as categories, $7::text[] as problems,
                    $8::text[] as sites, $9::text[] as moments, $10::text[] as departments,
                    $11::text[] as rare_terms, $12::text[] as title_templates,
                    $13::text[] as description_templates, $14::text[] as rare_templates,
                    $15::text[] as hold_reasons, $16::uuid[] as requesters, $17::uuid[] as assignees
         ),
         draws as materialized (
             select g.n,
                    $3::timestamptz + ($4::timestamptz - $3::timestamptz) * ((g.n - 1 + random()) / $2::int)
                        as created_at,
                    1 + floor(random() * cardinality(v.products))::int as product,
                    random() as r_status, random() as r_priority, random() as r_assigned,
                    random() as r_span, random() as r_touch, random() as r_rare, random() as r_version,
                    v.problems[1 + floor(random() * cardinality(v.problems))::int] as problem,
                    v.sites[1 + floor(random() * cardinality(v.sites))::int] as site,
                    v.moments[1 + floor(random() * cardinality(v.moments))::int] as moment,
                    v.departments[1 + floor(random() * cardinality(v.departments))::int] as department,
                    v.rare_terms[1 + floor(random() * cardinality(v.rare_terms))::int] as rare_term,
                    v.title_templates[1 + floor(random() * cardinality(v.title_templates))::int]
                        as title_template,
                    v.description_templates[1 + floor(random() * cardinality(v.description_templates))::int]
                        as description_template,
                    v.rare_templates[1 + floor(random() * cardinality(v.rare_templates))::int]
                        as rare_template,
                    v.hold_reasons[1 + floor(random() * cardinality(v.hold_reasons))::int] as hold_reason,
                    v.requesters[1 + floor(random() * cardinality(v.requesters))::int] as requester,
                    v.assignees[1 + floor(random() * cardinality(v.assignees))::int] as assignee
               from generate_series(1, $2::int) as g(n) cross join vocabulary v
         ),
         shaped as (
             select d.*,
                    v.products[d.product] as product_name,
                    v.categories[d.product] as category,
                    case when d.created_at > $4::timestamptz - interval '30 days' then
                         case when d.r_status < 0.35 then 'open' when d.r_status < 0.65 then 'in_progress'
                              when d.r_status < 0.75 then 'on_hold' when d.r_status < 0.90 then 'resolved'
                              else 'closed' end
                    else
                         case when d.r_status < 0.02 then 'open' when d.r_status < 0.05 then 'in_progress'
                              when d.r_status < 0.08 then 'on_hold' when d.r_status < 0.30 then 'resolved'
                              else 'closed' end
                    end as status,
                    case when d.r_priority < 0.25 then 'low' when d.r_priority < 0.70 then 'medium'
                         when d.r_priority < 0.90 then 'high' else 'urgent' end as priority,
                    interval '1 hour' * (1 + 119 * d.r_span) as span
               from draws d cross join vocabulary v
         ),
         timed as (
             select s.*,
                    case when s.status in ('resolved', 'closed')
                         then least(s.created_at + s.span, $4::timestamptz) end as resolved_at,
                    case when s.status = 'closed'
                         then least(s.created_at + s.span + interval '3 days', $4::timestamptz) end as closed_at,
                    format(s.title_template, s.product_name, s.problem, s.site, s.moment, s.department)
                        as title,
                    format(s.description_template, s.product_name, s.problem, s.site, s.moment, s.department,
                           case when s.r_rare < 0.35 then format(s.rare_template, s.rare_term) else '' end)
                        as description
               from shaped s
         )
         insert into tickets (id, tenant_id, number, title, description, status, priority, category,
                              requester_id, assignee_id, hold_reason, created_at, updated_at,
                              first_responded_at, resolved_at, closed_at, version)
         select {id}, $1::uuid, t.n,
                upper(left(t.title, 1)) || substr(t.title, 2),
                upper(left(t.description, 1)) || substr(t.description, 2),
                t.status, t.priority, t.category, t.requester,
                case when t.status <> 'open' or t.r_assigned < 0.3 then t.assignee end,
                case when t.status = 'on_hold' then t.hold_reason end,
                t.created_at,
                coalesce(t.closed_at, t.resolved_at, least(t.created_at + t.span * t.r_touch, $4::timestamptz)),
                case when t.status <> 'open'
                     then least(t.created_at + t.span * t.r_touch * 0.1, $4::timestamptz) end,
                t.resolved_at, t.closed_at,
                case when t.status = 'open' then 1 else 2 + floor(t.r_version * 4)::int end
           from timed t"
    )
}

/// Comments on a share ($6) of tenant $1's tickets, by the assignee (or $2) or the requester,
/// some internal, written some time between the ticket's creation and its last update.
fn insert_comments_sql() -> String {
    let id = uuid_v7_sql("p.at");
    format!(
        "with picked as materialized (
             select t.id, t.requester_id, coalesce(t.assignee_id, $2::uuid) as agent,
                    t.created_at + (t.updated_at - t.created_at) * random() as at,
                    random() as r_author,
                    ($3::text[])[1 + floor(random() * cardinality($3::text[]))::int] as agent_template,
                    ($4::text[])[1 + floor(random() * cardinality($4::text[]))::int] as requester_template,
                    ($5::text[])[1 + floor(random() * cardinality($5::text[]))::int] as rare_term
               from tickets t
              where t.tenant_id = $1::uuid and random() < $6::float8
         )
         insert into comments (id, tenant_id, ticket_id, author_id, body, internal, created_at)
         select {id}, $1::uuid, p.id,
                case when p.r_author < 0.6 then p.agent else p.requester_id end,
                case when p.r_author < 0.6 then format(p.agent_template, p.rare_term)
                     else format(p.requester_template, p.rare_term) end,
                p.r_author < 0.25,
                p.at
           from picked p"
    )
}

/// A tenant's people: its admin (with a token) and the members it invited.
struct Crew {
    tenant: TenantId,
    admin: UserId,
    token: String,
    agents: Vec<UserId>,
    requesters: Vec<UserId>,
}

/// What the load runs against, and what the report says about the data.
struct Seeded {
    tenant: TenantId,
    token: String,
    ids: Vec<TicketId>,
    tickets: [u64; 2],
    comments: [u64; 2],
    took: Duration,
    filter_matches: u64,
    /// The fewest and the most tickets a search word is in.
    search_matches: (u64, u64),
}

impl std::fmt::Display for Seeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "  data      tenant A: {} tickets, {} comments; tenant B: {} tickets, {} comments \
             (seeded in {:.1} s)",
            grouped(self.tickets[0]),
            grouped(self.comments[0]),
            grouped(self.tickets[1]),
            grouped(self.comments[1]),
            self.took.as_secs_f64()
        )?;
        writeln!(
            f,
            "            the filter matches {} of tenant A's tickets; each search word {} to {}",
            grouped(self.filter_matches),
            grouped(self.search_matches.0),
            grouped(self.search_matches.1)
        )
    }
}

/// Calls to the API while seeding, where any failure stops the benchmark.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get<T: DeserializeOwned>(&self, path: &str, token: &str) -> anyhow::Result<T> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        Self::answer(request, "GET", path).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        tenant: Option<TenantId>,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body);
        if let Some(tenant) = tenant {
            request = request.header(TENANT_HEADER, tenant.to_string());
        }
        Self::answer(request, "POST", path).await
    }

    async fn answer<T: DeserializeOwned>(
        request: reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> anyhow::Result<T> {
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}"))?;
        ensure!(
            status.is_success(),
            "{method} {path} answered {status}: {text}"
        );
        serde_json::from_str(&text).with_context(|| format!("{method} {path} answered {text}"))
    }
}

/// A token for `subject` that outlives any run (the test issuer's default lasts ten minutes).
fn long_token(issuer: &Issuer, subject: &str) -> String {
    issuer.token_for(subject, 7 * 24 * 3600)
}

/// Signs `subject` in (recording them, and joining the tenants that invited them).
async fn sign_in(api: &Api, issuer: &Issuer, subject: &str) -> anyhow::Result<(String, Me)> {
    let token = long_token(issuer, subject);
    let me: Me = api.get("/me", &token).await?;
    Ok((token, me))
}

/// Invites agents and requesters into the admin's tenant and signs each in, so they join.
async fn staff(
    api: &Api,
    issuer: &Issuer,
    crew: &mut Crew,
    prefix: &str,
    agents: usize,
    requesters: usize,
) -> anyhow::Result<()> {
    let people = (1..=agents)
        .map(|i| (format!("{prefix}-agent-{i}"), Role::Agent))
        .chain((1..=requesters).map(|i| (format!("{prefix}-requester-{i}"), Role::Requester)));
    for (subject, role) in people {
        let invitation = CreateInvitation {
            email: format!("{subject}@example.com"),
            role,
        };
        let _: serde_json::Value = api
            .post("/invitations", &crew.token, Some(crew.tenant), &invitation)
            .await?;
        let (_, me) = sign_in(api, issuer, &subject).await?;
        ensure!(
            me.memberships
                .iter()
                .any(|m| m.tenant_id == crew.tenant && m.role == role),
            "{subject} should have joined tenant {} by invitation: {me:?}",
            crew.tenant
        );
        match role {
            Role::Agent => crew.agents.push(me.user.id),
            _ => crew.requesters.push(me.user.id),
        }
    }
    Ok(())
}

async fn seed(args: &Args, owner: &PgPool, issuer: &Issuer, base: &str) -> anyhow::Result<Seeded> {
    eprintln!(
        "bench: seeding {} + {} tickets (about half a minute per 100,000 on two cores)",
        grouped(args.tickets.into()),
        grouped(args.other_tickets.into())
    );
    let started = Instant::now();
    let api = Api {
        http: reqwest::Client::new(),
        base: base.to_owned(),
    };

    // The installation's first user becomes admin of "Default": that is tenant A.
    let (token, me) = sign_in(&api, issuer, "bench-admin-a").await?;
    let tenant = match me.memberships.as_slice() {
        [m] if m.role == Role::Admin => m.tenant_id,
        _ => {
            bail!("the first user should have claimed the installation as admin of Default: {me:?}")
        }
    };
    let mut a = Crew {
        tenant,
        admin: me.user.id,
        token,
        agents: Vec::new(),
        requesters: Vec::new(),
    };
    staff(&api, issuer, &mut a, "bench-a", 4, 20).await?;

    // Another user makes tenant B.
    let (token, me) = sign_in(&api, issuer, "bench-admin-b").await?;
    let other: Tenant = api
        .post(
            "/tenants",
            &token,
            None,
            &CreateTenant {
                name: "Other Company".to_owned(),
            },
        )
        .await?;
    let mut b = Crew {
        tenant: other.id,
        admin: me.user.id,
        token,
        agents: Vec::new(),
        requesters: Vec::new(),
    };
    staff(&api, issuer, &mut b, "bench-b", 2, 5).await?;

    let now = Utc::now();
    let comments_a = insert_tickets(owner, &a, args.tickets, now, 0.25).await?;
    let comments_b = insert_tickets(owner, &b, args.other_tickets, now, 0.75).await?;
    sqlx::raw_sql("vacuum (analyze) users, memberships, tickets, comments")
        .execute(owner)
        .await
        .context("vacuum analyze")?;
    let took = started.elapsed();

    // What the load needs, read as tenant A.
    let mut tx = db::begin(owner, a.admin, Some(a.tenant)).await?;
    let ids: Vec<Uuid> = sqlx::query_scalar("select id from tickets where tenant_id = $1")
        .bind(a.tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
    let filter_matches: i64 = sqlx::query_scalar(
        "select count(*) from tickets
          where tenant_id = $1 and status = 'open' and priority = 'high' and category = 'hardware'",
    )
    .bind(a.tenant.as_uuid())
    .fetch_one(&mut *tx)
    .await?;
    let mut search_matches = (u64::MAX, 0);
    for word in SEARCH_WORDS {
        let matches: i64 = sqlx::query_scalar("select count(*) from tallydesk_search($1, true)")
            .bind(word)
            .fetch_one(&mut *tx)
            .await?;
        let matches = matches.unsigned_abs();
        search_matches = (search_matches.0.min(matches), search_matches.1.max(matches));
    }
    tx.commit().await?;

    Ok(Seeded {
        tenant: a.tenant,
        token: a.token,
        ids: ids.into_iter().map(TicketId::from_uuid).collect(),
        tickets: [args.tickets.into(), args.other_tickets.into()],
        comments: [comments_a, comments_b],
        took,
        filter_matches: filter_matches.unsigned_abs(),
        search_matches,
    })
}

/// Bulk-inserts `count` tickets and their comments into the crew's tenant, in one transaction
/// scoped to the tenant (row-level security is forced, even for the tables' owner), and moves the
/// tenant's ticket counter past them. Returns the number of comments.
async fn insert_tickets(
    owner: &PgPool,
    crew: &Crew,
    count: u32,
    now: DateTime<Utc>,
    seed: f64,
) -> anyhow::Result<u64> {
    let tenant = crew.tenant.as_uuid();
    let uuids = |ids: &[UserId]| ids.iter().map(UserId::as_uuid).collect::<Vec<_>>();
    let mut assignees = uuids(&crew.agents);
    assignees.push(crew.admin.as_uuid());
    let mut requesters = uuids(&crew.requesters);
    requesters.push(crew.admin.as_uuid());

    let mut tx = db::begin(owner, crew.admin, Some(crew.tenant)).await?;
    // The same words and shapes every run (the ids differ).
    sqlx::query("select setseed($1)")
        .bind(seed)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&insert_tickets_sql())
        .bind(tenant)
        .bind(i32::try_from(count).context("too many tickets")?)
        .bind(now - chrono::Duration::days(365))
        .bind(now)
        .bind(PRODUCTS.map(|(product, _)| product).as_slice())
        .bind(PRODUCTS.map(|(_, category)| category).as_slice())
        .bind(PROBLEMS.as_slice())
        .bind(SITES.as_slice())
        .bind(MOMENTS.as_slice())
        .bind(DEPARTMENTS.as_slice())
        .bind(RARE_TERMS.as_slice())
        .bind(TITLE_TEMPLATES.as_slice())
        .bind(DESCRIPTION_TEMPLATES.as_slice())
        .bind(RARE_TEMPLATES.as_slice())
        .bind(HOLD_REASONS.as_slice())
        .bind(requesters)
        .bind(assignees)
        .execute(&mut *tx)
        .await
        .context("inserting tickets")?;
    let comments = sqlx::query(&insert_comments_sql())
        .bind(tenant)
        .bind(crew.admin.as_uuid())
        .bind(AGENT_COMMENTS.as_slice())
        .bind(REQUESTER_COMMENTS.as_slice())
        .bind(RARE_TERMS.as_slice())
        .bind(COMMENT_RATE)
        .execute(&mut *tx)
        .await
        .context("inserting comments")?
        .rows_affected();
    sqlx::query("update tenant_counters set last_ticket_number = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(i64::from(count))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(comments)
}

// ---- Load ----------------------------------------------------------------------------------

/// Where requests go and who sends them.
struct Target {
    base: String,
    authorization: String,
    tenant: String,
    ids: Vec<TicketId>,
}

impl Target {
    /// The `n`th request a connection sends in `scenario`.
    fn request(
        &self,
        client: &reqwest::Client,
        scenario: Scenario,
        n: usize,
        rng: &mut StdRng,
    ) -> reqwest::RequestBuilder {
        let base = &self.base;
        let request = match scenario {
            Scenario::List => client.get(format!("{base}/tickets")),
            Scenario::Filter => client.get(format!(
                "{base}/tickets?status=open&priority=high&category=hardware"
            )),
            Scenario::Search => client.get(format!(
                "{base}/tickets?q={}",
                SEARCH_WORDS[n % SEARCH_WORDS.len()]
            )),
            Scenario::Get => {
                let id = self.ids[rng.gen_range(0..self.ids.len())];
                client.get(format!("{base}/tickets/{id}"))
            }
            Scenario::Create => {
                let (product, category) = PRODUCTS[rng.gen_range(0..PRODUCTS.len())];
                let problem = PROBLEMS[rng.gen_range(0..PROBLEMS.len())];
                let site = SITES[rng.gen_range(0..SITES.len())];
                let mut title = format!("{product} {problem}");
                title[..1].make_ascii_uppercase();
                client.post(format!("{base}/tickets")).json(&CreateTicket {
                    description: format!(
                        "{title} for everyone in the {site} office since this morning."
                    ),
                    title,
                    priority: Some(Priority::ALL[rng.gen_range(0..Priority::ALL.len())]),
                    category: Some(category.to_owned()),
                    customer_id: None,
                    assignee_id: None,
                    requester_id: None,
                })
            }
        };
        request
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(TENANT_HEADER, &self.tenant)
    }
}

/// What one scenario measured.
struct Outcome {
    scenario: Scenario,
    /// Requests sent after the warm-up.
    requests: u64,
    /// From the end of the warm-up to the last measured answer.
    elapsed: Duration,
    /// Of the successful measured requests, sorted.
    latencies: Vec<Duration>,
    /// Failed requests, the warm-up included.
    errors: u64,
    samples: Vec<String>,
}

impl Outcome {
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        // Nearest rank.
        let rank = (p / 100.0 * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1].as_secs_f64() * 1000.0
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.requests as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON);
        write!(
            f,
            "{:<8} {:>10} {:>9.0} {:>9.1} {:>9.1} {:>7}",
            self.scenario.name(),
            grouped(self.requests),
            rate,
            self.percentile_ms(50.0),
            self.percentile_ms(99.0),
            self.errors
        )
    }
}

/// What one connection saw.
#[derive(Default)]
struct Driven {
    requests: u64,
    latencies: Vec<Duration>,
    last_answer: Option<Instant>,
    errors: u64,
    samples: Vec<String>,
}

async fn measure(scenario: Scenario, args: &Args, target: &Arc<Target>) -> anyhow::Result<Outcome> {
    eprintln!(
        "bench: {} for {} s",
        scenario.name(),
        args.seconds + WARM_UP.as_secs()
    );
    let measure_from = Instant::now() + WARM_UP;
    let stop_at = measure_from + Duration::from_secs(args.seconds);
    let mut connections = JoinSet::new();
    for connection in 0..args.connections {
        // One client per connection, keeping at most one connection open: each task has its own.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building an HTTP client")?;
        let target = Arc::clone(target);
        let seed = u64::from(connection) << 8 | scenario as u64;
        connections.spawn(async move {
            drive(&client, &target, scenario, seed, measure_from, stop_at).await
        });
    }
    let mut outcome = Outcome {
        scenario,
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        errors: 0,
        samples: Vec::new(),
    };
    while let Some(driven) = connections.join_next().await {
        let driven = driven.context("a connection's task panicked")?;
        outcome.requests += driven.requests;
        outcome.latencies.extend(driven.latencies);
        outcome.errors += driven.errors;
        outcome.samples.extend(driven.samples);
        if let Some(last) = driven.last_answer {
            outcome.elapsed = outcome.elapsed.max(last.duration_since(measure_from));
        }
    }
    outcome.latencies.sort_unstable();
    outcome.samples.truncate(5);
    Ok(outcome)
}

/// Sends requests one after another on one connection until `stop_at`.
async fn drive(
    client: &reqwest::Client,
    target: &Target,
    scenario: Scenario,
    seed: u64,
    measure_from: Instant,
    stop_at: Instant,
) -> Driven {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut driven = Driven::default();
    for n in 0.. {
        let sent = Instant::now();
        if sent >= stop_at {
            break;
        }
        let answered = send(target.request(client, scenario, n, &mut rng)).await;
        let took = sent.elapsed();
        let measured = sent >= measure_from;
        if measured {
            driven.requests += 1;
            driven.last_answer = Some(Instant::now());
        }
        match answered {
            Ok(()) if measured => driven.latencies.push(took),
            Ok(()) => {}
            Err(error) => {
                driven.errors += 1;
                if driven.samples.len() < 2 {
                    driven.samples.push(error);
                }
            }
        }
    }
    driven
}

/// Sends a request and reads the whole answer; any failure is described.
async fn send(request: reqwest::RequestBuilder) -> Result<(), String> {
    let response = request.send().await.map_err(|e| format!("sending: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{status}, reading the body: {e}"))?;
    if status.is_success() {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&body);
    Err(format!(
        "{status}: {}",
        body.chars().take(300).collect::<String>()
    ))
}
