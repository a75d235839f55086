//! Control plane: the registry of clinics, their provisioning, host → clinic resolution,
//! tenant-scoped transactions and the migration runner.
//!
//! Everything that decides *which* clinic's data a unit of work may touch lives here, so the
//! rest of the platform can only reach tenant tables through a [`TenantTx`].

mod by_id;
mod by_stripe_account;
mod db;
mod error;
mod ids;
mod migrate;
mod model;
mod provision;
mod registry;
mod resolve;
pub mod signups;
pub mod sms;
mod sql;
mod values;

pub use by_id::ClinicsById;
pub use by_stripe_account::ClinicsByStripeAccount;
pub use db::{TenantDb, TenantTx};
pub use error::{TenantError, ValueError};
pub use ids::TenantId;
pub use migrate::{MigrationReport, Migrator, ensure_app_role, verify_app_role};
pub use model::{Branding, Logo, Tenant, TenantStatus};
pub use provision::{NewTenant, Provisioner};
pub use registry::Registry;
pub use resolve::{HostResolver, Site};
pub use values::{DisplayName, DomainName, HexColor, SenderName, Slug, TimeZoneName};
