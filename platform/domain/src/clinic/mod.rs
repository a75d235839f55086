//! The clinic's own public-facing details, kept in its schema.

pub mod branding;
mod profile;

pub use profile::{ClinicProfile, ProfileError, ProfileInput};
