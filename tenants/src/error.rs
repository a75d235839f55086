/// A value that failed to parse; the message is shown to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "slug must be 2 to 40 characters of lowercase letters, digits and hyphens, \
         starting and ending with a letter or digit"
    )]
    SlugFormat,
    #[error("slug '{0}' is reserved by the platform; choose another")]
    SlugReserved(String),
    #[error("'{0}' is not an IANA time zone name (for example America/New_York)")]
    TimeZone(String),
    #[error("colour must be written as #rrggbb, for example #0b5cad")]
    HexColor,
    #[error("clinic name must be 1 to 120 characters")]
    DisplayName,
    #[error("sender name must be 1 to 60 characters")]
    SenderName,
    #[error("'{0}' is not a valid domain name")]
    DomainName(String),
    #[error("logo must be a PNG, JPEG or SVG image of at most 512 KiB")]
    Logo,
    #[error("not a tenant id (expected ten_…)")]
    TenantId,
}

/// Failures of control-plane operations.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("slug '{0}' is already taken")]
    SlugTaken(String),
    #[error("no clinic with slug '{0}'")]
    UnknownSlug(String),
    #[error("domain '{0}' already belongs to a clinic")]
    DomainTaken(String),
    #[error("domain '{0}' is not registered for this clinic")]
    UnknownDomain(String),
    #[error("the number '{0}' already belongs to another clinic")]
    SmsNumberTaken(String),
    #[error("tenant migration {version} failed in schema {schema}")]
    Migration {
        schema: String,
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The caller's part of provisioning (e.g. the first administrator) failed.
    #[error("setting up the new clinic failed")]
    Seed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl TenantError {
    /// Maps a unique violation on any of the named constraints to a friendlier error.
    pub(crate) fn on_unique(
        err: sqlx::Error,
        constraints: &[&str],
        make: impl FnOnce() -> Self,
    ) -> Self {
        match &err {
            sqlx::Error::Database(db)
                if db.constraint().is_some_and(|c| constraints.contains(&c)) =>
            {
                make()
            }
            _ => Self::Database(err),
        }
    }
}
