//! Integration tests of the server against real Postgres (one fresh database per test).

mod accounts;
mod availability;
mod blobs;
mod embedded_pg;
mod events;
mod expenses;
mod isolation;
mod issuer;
mod jwt;
mod keys;
mod oidc_provider;
mod permissions;
mod seed;
mod sla;
mod sync;
mod tenancy;
mod tickets;
mod validation;
mod workflow;
