use serde::Serialize;

use crate::{TenantId, ValueError};

/// Whether a clinic's portal is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub(crate) fn from_db(s: &str) -> Self {
        // The column's CHECK constraint admits only these two; anything else is treated as
        // closed, never as open.
        if s == "active" {
            Self::Active
        } else {
            Self::Suspended
        }
    }
}

/// How a clinic's site, emails and SMS look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Branding {
    pub primary_color: String,
    pub accent_color: String,
    pub sender_name: String,
    pub has_logo: bool,
}

/// A clinic's logo image, served from its own host.
#[derive(Debug, Clone)]
pub struct Logo {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Logo {
    const MAX_BYTES: usize = 512 * 1024;

    /// Accepts PNG, JPEG or SVG images up to 512 KiB. The type is read from the bytes
    /// themselves; whatever type the upload declared is ignored (a script declared as
    /// `image/png` is refused, a PNG named `.svg` is served as PNG).
    pub fn new(bytes: Vec<u8>) -> Result<Self, ValueError> {
        if bytes.is_empty() || bytes.len() > Self::MAX_BYTES {
            return Err(ValueError::Logo);
        }
        let content_type = Self::sniff(&bytes).ok_or(ValueError::Logo)?;
        Ok(Self {
            content_type: content_type.to_owned(),
            bytes,
        })
    }

    fn sniff(bytes: &[u8]) -> Option<&'static str> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some("image/png");
        }
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some("image/jpeg");
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let head = text.trim_start_matches('\u{feff}').trim_start();
        let svg = head.starts_with("<svg")
            || ((head.starts_with("<?xml")
                || head.starts_with("<!--")
                || head.starts_with("<!DOCTYPE svg"))
                && head.contains("<svg"));
        svg.then_some("image/svg+xml")
    }
}

/// A clinic as the control plane knows it. Only this crate can make one (from a database
/// row), so holding a `Tenant` means it was resolved, never typed in or defaulted.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub(crate) id: TenantId,
    pub(crate) slug: String,
    pub(crate) display_name: String,
    pub(crate) status: TenantStatus,
    pub(crate) time_zone: String,
    pub(crate) branding: Branding,
    #[serde(skip)]
    pub(crate) schema_name: String,
    #[serde(skip)]
    pub(crate) role_name: String,
    /// The clinic's own sending number, if the operator gave it one (else the platform's).
    pub(crate) sms_number: Option<String>,
}

impl Tenant {
    pub fn id(&self) -> TenantId {
        self.id
    }
    pub fn slug(&self) -> &str {
        &self.slug
    }
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    pub fn status(&self) -> TenantStatus {
        self.status
    }
    pub fn is_active(&self) -> bool {
        self.status == TenantStatus::Active
    }
    pub fn time_zone(&self) -> &str {
        &self.time_zone
    }
    pub fn branding(&self) -> &Branding {
        &self.branding
    }
    /// The clinic's own text-message number, if it has one.
    pub fn sms_number(&self) -> Option<&str> {
        self.sms_number.as_deref()
    }

    /// The clinic's database role (for operators' tools and the privilege tests).
    pub fn role_name(&self) -> &str {
        &self.role_name
    }

    /// The clinic's schema, for operators' tools and messages.
    pub fn schema_name(&self) -> &str {
        &self.schema_name
    }
}

/// The columns every tenant query selects, in [`TenantRow`] order.
pub(crate) struct TenantRow {
    pub id: uuid::Uuid,
    pub slug: String,
    pub display_name: String,
    pub status: String,
    pub schema_name: String,
    pub role_name: String,
    pub time_zone: String,
    pub primary_color: String,
    pub accent_color: String,
    pub sender_name: String,
    pub has_logo: Option<bool>,
    pub sms_number: Option<String>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Self {
            id: TenantId::from_uuid(r.id),
            slug: r.slug,
            display_name: r.display_name,
            status: TenantStatus::from_db(&r.status),
            time_zone: r.time_zone,
            branding: Branding {
                primary_color: r.primary_color,
                accent_color: r.accent_color,
                sender_name: r.sender_name,
                has_logo: r.has_logo.unwrap_or(false),
            },
            schema_name: r.schema_name,
            role_name: r.role_name,
            sms_number: r.sms_number,
        }
    }
}

#[cfg(test)]
mod logo_tests {
    use super::Logo;

    #[test]
    fn the_type_comes_from_the_bytes_not_the_declaration() {
        let png = b"\x89PNG\r\n\x1a\nrest".to_vec();
        assert_eq!(Logo::new(png).unwrap().content_type, "image/png");
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0];
        assert_eq!(Logo::new(jpeg).unwrap().content_type, "image/jpeg");
        let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec();
        assert_eq!(Logo::new(svg).unwrap().content_type, "image/svg+xml");
        assert!(Logo::new(b"<script>alert(1)</script>".to_vec()).is_err());
        assert!(Logo::new(b"GIF89a....".to_vec()).is_err());
        assert!(Logo::new(Vec::new()).is_err());
    }
}
