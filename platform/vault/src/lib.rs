//! Documents at rest (issue 12's store). A copy of the disk or of the database alone must not
//! reveal a document, so:
//! - every blob is sealed with AES-256-GCM ([`seal`]) under its clinic's own data key, bound
//!   to the clinic and the blob's name (a blob moved to another clinic or renamed fails to
//!   open, it is never read as someone else's);
//! - a clinic's data key is kept only wrapped ([`keys`]) by the deployment's master key, which
//!   comes from configuration and never from the database;
//! - the bytes live behind one trait ([`store::BlobStore`]); the local directory is the
//!   default, written so a crash leaves a whole blob or none; S3-compatible object storage
//!   ([`s3`]) for deployments that outgrow one machine.

pub mod keys;
pub mod s3;
pub mod seal;
pub mod store;

pub use keys::{DataKey, KeyError, MasterKey};
pub use s3::{S3Blobs, S3Settings};
pub use seal::{SealError, open, seal};
pub use store::{BlobKey, BlobStore, LocalDir, StoreError};
