use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn hours(ranges: &[(&str, &str)]) -> Vec<[String; 2]> {
    ranges
        .iter()
        .map(|(a, b)| [(*a).to_owned(), (*b).to_owned()])
        .collect()
}

fn office(zone: &str, holidays: &[&str]) -> Calendar {
    let day = hours(&[("09:00", "17:00")]);
    let weekly = WeeklyHours {
        mon: day.clone(),
        tue: day.clone(),
        wed: day.clone(),
        thu: day.clone(),
        fri: day,
        ..Default::default()
    };
    let holidays: Vec<String> = holidays.iter().map(|h| (*h).to_owned()).collect();
    Calendar::parse(zone, &weekly, &holidays).unwrap()
}

#[test]
fn a_target_spanning_a_weekend_and_a_holiday() {
    // Friday 16:00 in Paris, four business hours: one on Friday, Monday is a holiday, so
    // three on Tuesday → 12:00 Tuesday, Paris time (UTC+1 in winter).
    let cal = office("Europe/Paris", &["2026-11-30"]);
    let due = cal
        .add_seconds(at("2026-11-27T15:00:00Z"), 4 * 3600)
        .unwrap();
    assert_eq!(due, at("2026-12-01T11:00:00Z"));
    assert_eq!(
        cal.seconds_between(at("2026-11-27T15:00:00Z"), due),
        4 * 3600
    );
}

#[test]
fn daylight_saving_changes_are_exact() {
    // Night shift 00:00–04:00 every day in New York. On 2026-03-08 clocks jump 02:00 → 03:00:
    // that night has three hours. On 2026-11-01 they fall back 02:00 → 01:00: five hours.
    let night = hours(&[("00:00", "04:00")]);
    let weekly = WeeklyHours {
        mon: night.clone(),
        tue: night.clone(),
        wed: night.clone(),
        thu: night.clone(),
        fri: night.clone(),
        sat: night.clone(),
        sun: night,
    };
    let cal = Calendar::parse("America/New_York", &weekly, &[]).unwrap();
    let spring = cal.seconds_between(at("2026-03-08T04:00:00Z"), at("2026-03-08T12:00:00Z"));
    assert_eq!(spring, 3 * 3600);
    let autumn = cal.seconds_between(at("2026-11-01T03:00:00Z"), at("2026-11-01T12:00:00Z"));
    assert_eq!(autumn, 5 * 3600);
}

#[test]
fn bad_calendars_name_the_field() {
    let field = |zone: &str, weekly: WeeklyHours, holidays: &[&str]| {
        let holidays: Vec<String> = holidays.iter().map(|h| (*h).to_owned()).collect();
        Calendar::parse(zone, &weekly, &holidays)
            .unwrap_err()
            .field()
    };
    assert_eq!(
        field("Mars/Olympus", WeeklyHours::default(), &[]),
        "time_zone"
    );
    let backwards = WeeklyHours {
        mon: hours(&[("17:00", "09:00")]),
        ..Default::default()
    };
    assert_eq!(field("UTC", backwards, &[]), "weekly");
    let overlapping = WeeklyHours {
        mon: hours(&[("09:00", "13:00"), ("12:00", "17:00")]),
        ..Default::default()
    };
    assert_eq!(field("UTC", overlapping, &[]), "weekly");
    let garbage = WeeklyHours {
        mon: hours(&[("9am", "5pm")]),
        ..Default::default()
    };
    assert_eq!(field("UTC", garbage, &[]), "weekly");
    assert_eq!(
        field("UTC", WeeklyHours::default(), &["25/12/2026"]),
        "holidays"
    );
}

#[test]
fn a_calendar_without_hours_never_comes_due() {
    let cal = Calendar::parse("UTC", &WeeklyHours::default(), &[]).unwrap();
    assert_eq!(cal.add_seconds(at("2026-01-01T00:00:00Z"), 60), None);
}

fn rule(target: Target, minutes: i64, calendar: Option<&Calendar>) -> TargetRule<'_> {
    TargetRule {
        target,
        seconds: minutes * 60,
        calendar,
        warn_seconds: default_warn_seconds(minutes * 60),
    }
}

#[test]
fn the_clock_pauses_on_hold_and_is_met_by_the_first_agent_reply() {
    let t0 = at("2026-06-01T10:00:00Z");
    let m = |n: i64| t0 + Duration::minutes(n);
    let history = [
        (m(0), Event::Created),
        (m(10), Event::Status(Status::OnHold)),
        (m(40), Event::Status(Status::InProgress)),
        (m(50), Event::RequesterReply),
    ];
    let first = rule(Target::FirstResponse, 60, None);
    // 20 minutes counted by m(50): 10 before the hold, 10 after.
    let s = evaluate(&first, &history, m(50));
    assert_eq!(s.state, SlaState::Running);
    assert_eq!(s.remaining_seconds, 40 * 60);
    assert_eq!(s.due_at, Some(m(90)));
    assert_eq!(s.at_risk_at, None);
    assert_eq!(
        s.next_change_at,
        Some(m(75)),
        "at risk with 15 minutes left"
    );
    let s = evaluate(&first, &history, m(80));
    assert_eq!(s.state, SlaState::AtRisk);
    assert_eq!(s.at_risk_at, Some(m(75)));
    assert_eq!(s.next_change_at, Some(m(90)));
    let s = evaluate(&first, &history, m(95));
    assert_eq!(s.state, SlaState::Breached);
    assert_eq!(s.breached_at, Some(m(90)));
    assert_eq!(s.remaining_seconds, -5 * 60);

    let mut answered = history.to_vec();
    answered.push((m(60), Event::AgentReply));
    let s = evaluate(&first, &answered, m(95));
    assert_eq!((s.state, s.met_at), (SlaState::Met, Some(m(60))));

    let paused = evaluate(&first, &history[..2], m(30));
    assert_eq!((paused.state, paused.due_at), (SlaState::Paused, None));
}

#[test]
fn resolution_is_met_when_resolved_and_runs_again_when_reopened() {
    let t0 = at("2026-06-01T10:00:00Z");
    let m = |n: i64| t0 + Duration::minutes(n);
    let mut history = vec![
        (m(0), Event::Created),
        (m(30), Event::Status(Status::Resolved)),
    ];
    let resolution = rule(Target::Resolution, 120, None);
    let s = evaluate(&resolution, &history, m(200));
    assert_eq!((s.state, s.met_at), (SlaState::Met, Some(m(30))));
    history.push((m(100), Event::Status(Status::Open)));
    let s = evaluate(&resolution, &history, m(110));
    assert_eq!(s.state, SlaState::Running);
    assert_eq!(s.remaining_seconds, 80 * 60);
}

#[test]
fn next_response_runs_from_each_requester_reply() {
    let t0 = at("2026-06-01T10:00:00Z");
    let m = |n: i64| t0 + Duration::minutes(n);
    let history = [
        (m(0), Event::Created),
        (m(5), Event::AgentReply),
        (m(20), Event::RequesterReply),
        (m(30), Event::AgentReply),
        (m(40), Event::RequesterReply),
    ];
    let next = rule(Target::NextResponse, 30, None);
    let s = evaluate(&next, &history, m(50));
    assert_eq!(s.remaining_seconds, 10 * 60, "10 + 10 minutes waited");
}

// ---- Against a brute-force reference, minute by minute -----------------------------------

const ZONES: [&str; 7] = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "America/Sao_Paulo",
];

fn arb_day() -> impl Strategy<Value = Vec<[String; 2]>> {
    // Up to three ranges on quarter hours, sorted and disjoint by construction.
    proptest::collection::btree_set(0u32..=96, 0..=6).prop_map(|marks| {
        let marks: Vec<u32> = marks.into_iter().collect();
        marks
            .chunks_exact(2)
            .map(|p| {
                let clock = |q: u32| format!("{:02}:{:02}", q / 4, (q % 4) * 15);
                [clock(p[0]), clock(p[1])]
            })
            .collect()
    })
}

fn arb_calendar() -> impl Strategy<Value = Calendar> {
    (
        proptest::sample::select(ZONES.to_vec()),
        proptest::collection::vec(arb_day(), 7),
        proptest::collection::vec(0u32..60, 0..4),
    )
        .prop_map(|(zone, days, holidays)| {
            let mut d = days.into_iter();
            let mut next = || d.next().unwrap_or_default();
            let weekly = WeeklyHours {
                mon: next(),
                tue: next(),
                wed: next(),
                thu: next(),
                fri: next(),
                sat: next(),
                sun: next(),
            };
            let base = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
            let holidays: Vec<String> = holidays
                .iter()
                .map(|n| (base + Duration::days(i64::from(*n))).to_string())
                .collect();
            Calendar::parse(zone, &weekly, &holidays).unwrap()
        })
}

/// Minutes from 2026-03-01 00:00 UTC, across the March/April DST changes of the zones above.
fn minute(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::minutes(n)
}

fn reference_seconds(cal: &Calendar, from: i64, to: i64) -> i64 {
    (from..to).filter(|m| cal.is_open(minute(*m))).count() as i64 * 60
}

fn reference_add(cal: &Calendar, from: i64, minutes: i64) -> Option<DateTime<Utc>> {
    if minutes == 0 {
        return Some(minute(from));
    }
    let mut left = minutes;
    for m in from..from + 60 * 24 * 90 {
        if cal.is_open(minute(m)) {
            left -= 1;
            if left == 0 {
                return Some(minute(m + 1));
            }
        }
    }
    None
}

fn cases() -> u32 {
    std::env::var("TALLYDESK_SLA_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn business_time_matches_the_minute_by_minute_reference(
        cal in arb_calendar(),
        from in 0i64..60 * 24 * 60,
        len in 0i64..60 * 24 * 14,
    ) {
        prop_assert_eq!(
            cal.seconds_between(minute(from), minute(from + len)),
            reference_seconds(&cal, from, from + len)
        );
    }

    #[test]
    fn deadlines_match_the_minute_by_minute_reference(
        cal in arb_calendar(),
        from in 0i64..60 * 24 * 60,
        target in 0i64..60 * 24 * 3,
    ) {
        let expected = reference_add(&cal, from, target);
        let got = cal.add_seconds(minute(from), target * 60);
        // The reference looks 90 days ahead; the clock ten years.
        if expected.is_some() {
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn ticket_states_match_the_reference(
        cal in arb_calendar(),
        steps in proptest::collection::vec((1i64..600, 0u8..5), 0..8),
        now_after in 0i64..3000,
        target_minutes in 1i64..900,
        business in any::<bool>(),
    ) {
        // A history of holds, resumes and replies at random minutes.
        let mut history = vec![(minute(0), Event::Created)];
        let mut t = 0;
        for (gap, kind) in steps {
            t += gap;
            let event = match kind {
                0 => Event::Status(Status::OnHold),
                1 => Event::Status(Status::InProgress),
                2 => Event::Status(Status::Open),
                3 => Event::RequesterReply,
                _ => Event::AgentReply,
            };
            history.push((minute(t), event));
        }
        let now = now_after;
        let calendar = business.then_some(&cal);
        let r = rule(Target::FirstResponse, target_minutes, calendar);
        let got = evaluate(&r, &history, minute(now));

        // Minute by minute: the clock runs while open or in progress, before an agent reply.
        let (mut status, mut met, mut elapsed, mut breached, mut at_risk) =
            (Status::Open, None, 0i64, None, None);
        let warn_from = (r.seconds - r.warn_seconds).max(0);
        for m in 0..now {
            for (at, e) in history.iter().filter(|(at, _)| *at == minute(m)) {
                match e {
                    Event::Status(s) => status = *s,
                    Event::AgentReply if met.is_none() => met = Some(*at),
                    _ => {}
                }
            }
            let running = met.is_none() && matches!(status, Status::Open | Status::InProgress);
            if running && (!business || cal.is_open(minute(m))) {
                if at_risk.is_none() && elapsed + 60 >= warn_from {
                    at_risk = Some(minute(m) + Duration::seconds(warn_from - elapsed));
                }
                elapsed += 60;
                if breached.is_none() && elapsed >= r.seconds {
                    breached = Some(minute(m + 1));
                }
            }
        }
        // Events at `now` itself count (a reply at `now` meets the target).
        for (at, e) in history.iter().filter(|(at, _)| *at == minute(now)) {
            match e {
                Event::Status(s) => status = *s,
                Event::AgentReply if met.is_none() => met = Some(*at),
                _ => {}
            }
        }
        if warn_from == 0 {
            // A target shorter than its warning is at risk from the start.
            at_risk = Some(minute(0));
        }
        prop_assert_eq!(got.remaining_seconds, r.seconds - elapsed);
        prop_assert_eq!(got.breached_at, breached);
        prop_assert_eq!(got.at_risk_at, at_risk);
        prop_assert_eq!(got.met_at, met);
        let running = met.is_none() && matches!(status, Status::Open | Status::InProgress);
        let expected_state = if breached.is_some() {
            SlaState::Breached
        } else if met.is_some() {
            SlaState::Met
        } else if !running {
            SlaState::Paused
        } else if r.seconds - elapsed <= r.warn_seconds {
            SlaState::AtRisk
        } else {
            SlaState::Running
        };
        prop_assert_eq!(got.state, expected_state);
    }
}

#[test]
fn the_first_matching_active_policy_applies() {
    let urgent = Policy {
        id: SlaPolicyId::new(),
        policy: PolicyInput {
            name: "Urgent".into(),
            priorities: Some(vec![Priority::Urgent]),
            first_response_minutes: Some(30),
            active: true,
            ..Default::default()
        },
        version: 1,
    };
    let everything = Policy {
        id: SlaPolicyId::new(),
        policy: PolicyInput {
            name: "Standard".into(),
            resolution_minutes: Some(480),
            active: true,
            ..Default::default()
        },
        version: 1,
    };
    let mut policies = vec![(urgent.clone(), None), (everything, None)];
    let history = [(at("2026-06-01T10:00:00Z"), Event::Created)];
    let now = at("2026-06-01T10:10:00Z");
    let sla = |p: &[(Policy, Option<Calendar>)], priority| {
        ticket_sla(p, priority, "general", None, &history, now).map(|s| s.policy_name)
    };
    assert_eq!(sla(&policies, Priority::Urgent).as_deref(), Some("Urgent"));
    assert_eq!(sla(&policies, Priority::Low).as_deref(), Some("Standard"));
    policies[0].0.policy.active = false;
    assert_eq!(
        sla(&policies, Priority::Urgent).as_deref(),
        Some("Standard")
    );
    assert_eq!(sla(&policies[..1], Priority::Urgent), None);
}

#[test]
fn bad_policies_name_the_field() {
    let field = |p: PolicyInput| p.validate().unwrap_err().field();
    let ok = PolicyInput {
        name: "Standard".into(),
        resolution_minutes: Some(60),
        ..Default::default()
    };
    assert!(ok.validate().is_ok());
    assert_eq!(
        field(PolicyInput {
            name: " ".into(),
            ..ok.clone()
        }),
        "name"
    );
    assert_eq!(
        field(PolicyInput {
            resolution_minutes: None,
            ..ok.clone()
        }),
        "resolution_minutes"
    );
    assert_eq!(
        field(PolicyInput {
            first_response_minutes: Some(0),
            ..ok.clone()
        }),
        "first_response_minutes"
    );
    assert_eq!(
        field(PolicyInput {
            business_hours: true,
            ..ok.clone()
        }),
        "calendar_id"
    );
    assert_eq!(
        field(PolicyInput {
            categories: Some(vec!["Not Valid".into()]),
            ..ok
        }),
        "category"
    );
}

#[test]
fn policies_in_force_are_the_active_ones_in_order_with_their_calendars() {
    let calendar = CalendarId::new();
    let policy = |name: &str, active: bool, calendar_id: Option<CalendarId>| Policy {
        id: SlaPolicyId::new(),
        policy: PolicyInput {
            name: name.into(),
            resolution_minutes: Some(60),
            business_hours: calendar_id.is_some(),
            calendar_id,
            active,
            ..Default::default()
        },
        version: 1,
    };
    let office = office("Europe/Paris", &[]);
    let calendars = HashMap::from([(calendar, office.clone())]);
    let paired = in_force(
        [
            policy("Office hours", true, Some(calendar)),
            policy("Retired", false, None),
            policy("Calendar gone", true, Some(CalendarId::new())),
            policy("Around the clock", true, None),
        ],
        &calendars,
    );
    let names: Vec<_> = paired
        .iter()
        .map(|(p, c)| (p.policy.name.as_str(), c.is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("Office hours", true),
            ("Calendar gone", false),
            ("Around the clock", false)
        ],
        "inactive policies are left out, the order stays, and a calendar that is not there \
         leaves the policy counting every minute"
    );
    assert_eq!(paired[0].1.as_ref(), Some(&office));
}

#[test]
fn targets_are_named_as_on_the_wire() {
    for target in Target::ALL {
        let json = serde_json::to_string(&target).unwrap();
        assert_eq!(
            json,
            format!("\"{}\"", target.as_str()),
            "as_str is the name the server, the desktop and the UI exchange"
        );
        assert_eq!(target.as_str().parse::<Target>(), Ok(target));
        assert_eq!(target.label(), target.as_str().replace('_', " "));
    }
    assert!("first response".parse::<Target>().is_err());
}
