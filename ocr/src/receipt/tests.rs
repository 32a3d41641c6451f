use super::*;

fn fixture(name: &str) -> Receipt {
    let text = match name {
        "rounding-my" => include_str!("../../tests/fixtures/rounding-my.txt"),
        "grocery-us" => include_str!("../../tests/fixtures/grocery-us.txt"),
        "cafe-uk" => include_str!("../../tests/fixtures/cafe-uk.txt"),
        "bistro-eu" => include_str!("../../tests/fixtures/bistro-eu.txt"),
        "cash-change-only" => include_str!("../../tests/fixtures/cash-change-only.txt"),
        other => panic!("no fixture {other}"),
    };
    parse(&lines_from_text(text), &ParseOptions::default())
}

fn amount(s: &str) -> Amount {
    s.parse().unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn the_rounded_total_is_what_was_paid() {
    let r = fixture("rounding-my");
    assert_eq!(
        r.total.as_ref().map(|t| t.value),
        Some(amount("9.75")),
        "the total after rounding is what the customer paid"
    );
    assert_eq!(r.subtotal.map(|t| t.value), Some(amount("9.24")));
    assert_eq!(r.tax.map(|t| t.value), Some(amount("0.55")));
    assert_eq!(r.currency.map(|c| c.value).as_deref(), Some("MYR"));
    assert_eq!(r.date.map(|d| d.value), Some(date(2018, 3, 14)));
}

#[test]
fn the_merchant_is_the_company_name_not_the_address_or_registration() {
    let r = fixture("rounding-my");
    assert_eq!(
        r.merchant.map(|m| m.value).as_deref(),
        Some("KEDAI RUNCIT MAJU JAYA SDN BHD"),
        "the registration number in brackets is not part of the name"
    );
    let r = fixture("grocery-us");
    assert_eq!(
        r.merchant.map(|m| m.value).as_deref(),
        Some("Sunrise Market")
    );
}

#[test]
fn common_misreadings_of_names_are_undone() {
    let r = parse(
        &lines_from_text("Gerbang Alaf Restäurants Sdn Bhd\nTOTAL  5.00\n"),
        &ParseOptions::default(),
    );
    assert_eq!(
        r.merchant.map(|m| m.value).as_deref(),
        Some("Gerbang Alaf Restaurants Sdn Bhd")
    );
    let r = parse(
        &lines_from_text("SUN VICTORY SON BHD\nTOTAL  5.00\n"),
        &ParseOptions::default(),
    );
    assert_eq!(
        r.merchant.map(|m| m.value).as_deref(),
        Some("SUN VICTORY SDN BHD")
    );
    let r = parse(
        &lines_from_text("Café Crème Brûlée\nTOTAL  5.00\n"),
        &ParseOptions::default(),
    );
    assert_eq!(
        r.merchant.map(|m| m.value).as_deref(),
        Some("Café Crème Brûlée"),
        "real accents stay"
    );
}

#[test]
fn line_items_have_description_quantity_and_amount() {
    let r = fixture("rounding-my");
    let items: Vec<(&str, Option<String>, String)> = r
        .items
        .iter()
        .map(|i| {
            (
                i.description.as_str(),
                i.quantity.map(|q| q.to_string()),
                i.amount.to_string(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            ("MINERAL WATER 1.5L", Some("2".into()), "2.40".into()),
            ("BREAD WHOLEMEAL", Some("1".into()), "3.95".into()),
            ("SUGAR 1KG", Some("1".into()), "2.89".into()),
        ]
    );
    assert!(
        r.warnings.is_empty(),
        "the items add up to the subtotal: {:?}",
        r.warnings
    );
}

#[test]
fn us_receipt_with_month_name_date_and_dollar_total() {
    let r = fixture("grocery-us");
    assert_eq!(r.total.map(|t| t.value), Some(amount("8.27")));
    assert_eq!(r.subtotal.map(|t| t.value), Some(amount("7.66")));
    assert_eq!(r.tax.map(|t| t.value), Some(amount("0.61")));
    assert_eq!(r.date.map(|d| d.value), Some(date(2018, 12, 25)));
    assert_eq!(r.currency.map(|c| c.value).as_deref(), Some("USD"));
    assert_eq!(r.items.len(), 3, "{:?}", r.items);
    assert_eq!(r.items[0].quantity, Some(Decimal::from(2)));
}

#[test]
fn pound_sign_and_quantities_written_with_x() {
    let r = fixture("cafe-uk");
    assert_eq!(r.total.map(|t| t.value), Some(amount("8.35")));
    assert_eq!(r.currency.map(|c| c.value).as_deref(), Some("GBP"));
    assert_eq!(r.date.map(|d| d.value), Some(date(2018, 12, 25)));
    assert_eq!(
        r.merchant.map(|m| m.value).as_deref(),
        Some("The Copper Kettle Ltd")
    );
    assert_eq!(r.items.len(), 2);
    assert_eq!(r.items[0].quantity, Some(Decimal::from(2)));
    assert_eq!(r.items[0].description, "Flat White");
}

#[test]
fn decimal_commas_and_dotted_dates() {
    let r = fixture("bistro-eu");
    assert_eq!(r.total.map(|t| t.value), Some(amount("17.70")));
    assert_eq!(r.currency.map(|c| c.value).as_deref(), Some("EUR"));
    assert_eq!(
        r.date.map(|d| d.value),
        Some(date(2019, 4, 3)),
        "03.04.2019 is day first"
    );
}

#[test]
fn without_a_total_line_the_total_is_cash_less_change() {
    let r = fixture("cash-change-only");
    assert_eq!(r.total.as_ref().map(|t| t.value), Some(amount("6.00")));
    assert!(
        r.total.unwrap().confidence < 0.7,
        "a derived total is uncertain"
    );
    assert_eq!(r.date.map(|d| d.value), Some(date(2019, 1, 12)));
}

#[test]
fn a_printed_rounded_total_read_twice_is_not_overruled_by_a_misread_cash_amount() {
    let text = "Total  5.00\nRounding Adjustment  0.00\nTotal After Rounding  5.00\n\
                Cash  10.03\nCHANGE  5.00\n";
    let r = parse(&lines_from_text(text), &ParseOptions::default());
    assert_eq!(
        r.total.map(|t| t.value),
        Some(amount("5.00")),
        "two total rows agree, so cash less change (5.03) must hold a misread digit"
    );
}

#[test]
fn total_and_its_amount_pair_up_by_row_even_when_read_as_separate_boxes() {
    let lines = vec![
        line("TOTAL", 0., 100.),
        line("CASH", 0., 125.),
        line("12.50", 300., 101.),
        line("20.00", 300., 126.),
        line("CHANGE", 0., 150.),
        line("7.50", 300., 151.),
    ];
    let r = parse(&lines, &ParseOptions::default());
    assert_eq!(r.total.map(|t| t.value), Some(amount("12.50")));
}

#[test]
fn subtotal_quantity_and_change_lines_are_never_the_total() {
    let text = "SUBTOTAL  50.00\nTOTAL QTY  3\nTOTAL  53.00\nCASH  100.00\nCHANGE  47.00\n";
    let r = parse(&lines_from_text(text), &ParseOptions::default());
    assert_eq!(r.total.map(|t| t.value), Some(amount("53.00")));
}

#[test]
fn the_largest_total_wins_over_totals_before_tax() {
    let text = "TOTAL (EXCL GST)  100.00\nGST 6%  6.00\nTOTAL (INCL GST)  106.00\nCASH  110.00\n";
    let r = parse(&lines_from_text(text), &ParseOptions::default());
    assert_eq!(r.total.map(|t| t.value), Some(amount("106.00")));
}

#[test]
fn a_price_with_cents_beats_one_whose_point_was_lost() {
    let text = "Total:  3100\nTotal Amount:  31.00\nCash  101.00\nChange  70.00\n";
    let r = parse(&lines_from_text(text), &ParseOptions::default());
    assert_eq!(r.total.map(|t| t.value), Some(amount("31.00")));
}

#[test]
fn items_that_do_not_add_up_raise_a_warning() {
    let text = "ACME STORE\nWIDGET  5.00\nGADGET  7.00\nTOTAL  20.00\n";
    let r = parse(&lines_from_text(text), &ParseOptions::default());
    assert_eq!(
        r.warnings,
        [Warning::ItemsDoNotAddUp {
            items: amount("12.00"),
            expected: amount("20.00")
        }]
    );
}

#[test]
fn implausible_dates_lose_to_plausible_ones() {
    let text = "SHOP\nBEST BEFORE 01/01/2031\nDATE 05/06/2018\nTOTAL 5.00\n";
    let options = ParseOptions {
        today: Some(date(2019, 1, 1)),
        ..ParseOptions::default()
    };
    let r = parse(&lines_from_text(text), &options);
    assert_eq!(r.date.map(|d| d.value), Some(date(2018, 6, 5)));
}

#[test]
fn month_first_when_the_receipt_shows_it() {
    let text = "SHOP\n12/28/2017\nprinted 03/04/2018\nTOTAL 5.00\n";
    let r = parse(&lines_from_text(text), &ParseOptions::default());
    assert_eq!(r.date.map(|d| d.value), Some(date(2017, 12, 28)));
}

#[test]
fn the_locale_currency_applies_when_the_receipt_shows_none() {
    let text = "SHOP\nTOTAL 5.00\n";
    let options = ParseOptions {
        default_currency: Some("SGD".into()),
        ..ParseOptions::default()
    };
    let r = parse(&lines_from_text(text), &options);
    let currency = r.currency.unwrap();
    assert_eq!(currency.value, "SGD");
    assert!(currency.confidence < 0.5, "a guessed currency is uncertain");
}

#[test]
fn fields_point_back_at_the_lines_they_came_from() {
    let lines = lines_from_text("ACME TRADING\nTOTAL  9.00\n");
    let r = parse(&lines, &ParseOptions::default());
    let total = r.total.unwrap();
    assert_eq!(total.lines.len(), 1);
    assert_eq!(lines[total.lines[0]].text, "9.00");
    assert_eq!(lines[r.merchant.unwrap().lines[0]].text, "ACME TRADING");
}

#[test]
fn empty_input_gives_an_empty_receipt() {
    assert_eq!(parse(&[], &ParseOptions::default()), Receipt::default());
}

fn line(text: &str, left: f32, top: f32) -> Line {
    Line {
        text: text.into(),
        bounds: Rect::new(left, top, left + 10. * text.len() as f32, top + 20.),
        confidence: 1.,
    }
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// 256 cases per property in normal runs; `PROPTEST_CASES=20000` for a long run by hand.
    fn fuzz_cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

        /// Any text, any boxes: the parser returns, and what it returns is consistent.
        #[test]
        fn parser_never_panics_on_arbitrary_lines(
            lines in prop::collection::vec(
                ("\\PC{0,40}", -1e4f32..1e4, -1e4f32..1e4, 0f32..500., 0f32..200., 0f32..1.),
                0..40,
            )
        ) {
            let lines: Vec<Line> = lines
                .into_iter()
                .map(|(text, x, y, w, h, c)| Line { text, bounds: Rect::new(x, y, x + w, y + h), confidence: c })
                .collect();
            let r = parse(&lines, &ParseOptions::default());
            for f in [r.merchant.as_ref().map(|f| (f.confidence, &f.lines))].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&f.0));
                prop_assert!(f.1.iter().all(|&i| i < lines.len()));
            }
            if let Some(t) = &r.total {
                prop_assert!((0.0..=1.0).contains(&t.confidence));
                prop_assert!(t.lines.iter().all(|&i| i < lines.len()));
            }
        }

        /// Receipt-like text: keywords, amounts and dates in random order and shapes.
        #[test]
        fn parser_never_panics_on_receipt_like_text(
            rows in prop::collection::vec(
                prop::collection::vec(
                    prop_oneof![
                        Just("TOTAL".to_string()), Just("SUBTOTAL".to_string()), Just("ROUNDING".to_string()),
                        Just("CASH".to_string()), Just("CHANGE".to_string()), Just("GST".to_string()),
                        Just("RM".to_string()), Just("$".to_string()), Just("SDN BHD".to_string()),
                        Just("x".to_string()), Just("@".to_string()), Just("-".to_string()),
                        "[0-9]{1,9}([.,][0-9]{1,3})?",
                        "[0-9]{1,4}[/.-][0-9]{1,2}[/.-][0-9]{1,4}",
                        "(JAN|FEB|DEC|Sept|march)",
                        "[A-Za-z]{1,12}",
                    ],
                    0..8,
                ),
                0..30,
            )
        ) {
            let text: String = rows.iter().map(|r| r.join("  ")).collect::<Vec<_>>().join("\n");
            let r = parse(&lines_from_text(&text), &ParseOptions::default());
            if let (Some(total), Some(sub)) = (&r.total, &r.subtotal) {
                // Not an invariant of receipts, but both must be real amounts.
                prop_assert!(total.value.decimal().scale() <= 28 && sub.value.decimal().scale() <= 28);
            }
        }

        /// Dates found are real calendar dates within the text.
        #[test]
        fn found_dates_lie_within_the_text(text in "\\PC{0,60}") {
            for d in find_dates(&text, DateOrder::DayFirst) {
                prop_assert!(d.start <= d.end && d.end <= text.len());
                prop_assert!(text.is_char_boundary(d.start) && text.is_char_boundary(d.end));
            }
            for a in find_amounts(&text) {
                prop_assert!(a.start < a.end && a.end <= text.len());
                prop_assert!(a.amount.decimal() >= Decimal::ZERO);
            }
        }
    }
}
