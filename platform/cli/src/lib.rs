//! The `portal` binary's commands, as a library so the end-to-end tests run the real thing.

pub mod config;
pub mod demo;
pub mod demo_record;
pub mod migrate;
pub mod pools;
pub mod serve;
pub mod tenants;
pub mod work;

pub use config::{Config, ConfigError};
