//! The product's rules and tenant-scoped stores. Stores take a [`portal_tenants::TenantTx`],
//! so every query runs as one clinic's role inside its schema; no web or job framework here.

pub mod audit;
pub mod billing;
pub mod clinic;
pub mod clock;
pub mod documents;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod links;
pub mod patients;
pub mod phone;
pub mod record;
pub mod scheduling;
pub mod signup;
pub mod undelivered;
pub mod values;
