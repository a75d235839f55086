use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A clinic's id. Prints as `ten_<hex>` so logs read at a glance and ids of different kinds
/// cannot be mistaken for each other.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct TenantId(Uuid);

impl TenantId {
    const PREFIX: &'static str = "ten_";

    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The NOLOGIN role that owns this clinic's access. Roles are cluster-wide, so the name
    /// comes from the id (unique everywhere), not from the slug (unique per database).
    pub(crate) fn role_name(&self) -> String {
        format!("portal_ten_{}", self.0.simple())
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0.simple())
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> Self {
        id.to_string()
    }
}

impl FromStr for TenantId {
    type Err = crate::ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(Self::PREFIX)
            .and_then(|hex| Uuid::try_parse(hex).ok())
            .map(Self)
            .ok_or(crate::ValueError::TenantId)
    }
}

impl TryFrom<String> for TenantId {
    type Error = crate::ValueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_with_prefix_and_parses_back() {
        let id = TenantId::new();
        let text = id.to_string();
        assert!(text.starts_with("ten_"));
        assert_eq!(text.parse::<TenantId>().ok(), Some(id));
        assert!("pat_0192".parse::<TenantId>().is_err());
        assert!(
            id.role_name().len() <= 63,
            "PostgreSQL truncates longer identifiers"
        );
    }
}
