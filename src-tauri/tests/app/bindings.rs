//! `ui/src/bindings.ts` is generated from the commands; a stale copy fails this test.

use std::path::PathBuf;

#[test]
fn ui_bindings_match_the_commands() {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    let fresh = tempfile::NamedTempFile::new().unwrap();
    tallydesk_lib::export_bindings(fresh.path()).expect("exporting the bindings");
    let fresh = std::fs::read_to_string(fresh.path()).unwrap();
    if std::env::var_os("TALLYDESK_UPDATE_BINDINGS").is_some() {
        std::fs::write(&committed, &fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        current == fresh,
        "ui/src/bindings.ts is stale: regenerate it with \
         `TALLYDESK_UPDATE_BINDINGS=1 cargo test -p tallydesk --test app bindings` and commit it"
    );
}
