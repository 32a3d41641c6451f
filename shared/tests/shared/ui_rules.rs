//! `ui/src/test/rules.generated.ts` is written from [`tallydesk_shared::rules::rules`]: the UI's
//! fake desk takes the permission matrix and the workflow from it. A stale copy fails this test.

use std::path::PathBuf;

const HEADER: &str = "\
// Generated from Rust (tallydesk_shared::rules): the permission matrix and the ticket workflow,
// for the fake desk the component tests run against. Do not edit: regenerate it with
// `TALLYDESK_UPDATE_BINDINGS=1 cargo test -p tallydesk-shared --test shared ui_rules`.

import type { Action, Role, Status } from '../bindings';

/** How far a role may take an action: `own_tickets` only on tickets the member raised. */
export type Access = 'denied' | 'own_tickets' | 'allowed';

export interface Rules {
  /** `access[role][action]`. */
  access: Record<Role, Record<Action, Access>>;
  /** The statuses a ticket may move to from each, for whoever may work it. */
  next: Record<Status, Status[]>;
  /** The moves a role may make, by status: on tickets the mover raised, and on others'. */
  moves: Record<Role, { own: Record<Status, Status[]>; others: Record<Status, Status[]> }>;
  /** What opening a ticket does to its status, by role (`null`: nothing). */
  on_view: Record<Role, Record<Status, Status | null>>;
}

export const RULES: Rules = ";

#[test]
fn ui_rules_match_the_domain() {
    let committed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/test/rules.generated.ts");
    let rules = serde_json::to_string_pretty(&tallydesk_shared::rules::rules()).unwrap();
    let fresh = format!("{HEADER}{rules};\n");
    if std::env::var_os("TALLYDESK_UPDATE_BINDINGS").is_some() {
        std::fs::write(&committed, &fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        current == fresh,
        "ui/src/test/rules.generated.ts is stale: regenerate it with \
         `TALLYDESK_UPDATE_BINDINGS=1 cargo test -p tallydesk-shared --test shared ui_rules` \
         and commit it"
    );
}
