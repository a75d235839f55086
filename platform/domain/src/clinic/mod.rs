//! The clinic's own public-facing details, kept in its schema.

mod profile;

pub use profile::{ClinicProfile, ProfileError};
