//! What the tests and benchmarks of the server and the desktop core share. A dev-dependency
//! only: no product crate depends on it.
//!
//! - [`app`]: the server in-process on a test database ([`app::TestApp`]), served on port 0
//!   when a test needs real HTTP, and the users and teams that call it;
//! - [`issuer`]: a token issuer on loopback whose tokens the server trusts;
//! - [`clock`]: a clock the test moves by hand;
//! - [`oidc`]: the certified OpenID provider (npm `oidc-provider`, `oidc/provider.mjs`) under
//!   node, and an HTTP client that goes through its pages as a person's browser does;
//! - [`bench`]: the benchmarks' database, the machine's description, bulk seeding;
//! - `desktop` (feature `desktop`): the desktop core's sign-in parts for tests (a browser the
//!   app opens, the keychain, a clock that runs ahead).

pub mod app;
pub mod bench;
pub mod clock;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod issuer;
pub mod oidc;

/// The audience the server expects in access tokens, and the test issuers put there.
pub const AUDIENCE: &str = "tallydesk-api";

pub use app::{Reply, Served, Team, TestApp, User};
pub use clock::TestClock;
