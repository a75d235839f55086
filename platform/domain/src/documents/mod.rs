//! Documents: PDFs the workers print from the record (`document.render`), files patients
//! upload, and the encrypted store under both ([`vault`]). A row names each blob, and neither
//! is left without the other.

pub mod content;
pub mod kinds;
pub mod letters;
pub mod printout;
pub mod store;
pub mod vault;

pub use content::{ContentError, MAX_UPLOAD, MediaType};
pub use kinds::{Kind, Status};
pub use portal_vault::StoreError;
pub use store::{Document, DocumentError, Download, Requester, Stored};
pub use vault::{Vault, VaultError};
