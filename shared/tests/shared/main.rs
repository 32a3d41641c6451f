//! Tests of the domain crate as its users see it.

mod ui_rules;
