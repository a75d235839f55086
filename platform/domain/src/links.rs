//! Absolute links to a clinic's site, for emails.

/// Builds `scheme://slug.base-domain[:port]/path`.
#[derive(Clone, Debug)]
pub struct Links {
    pub scheme: String,
    pub base_domain: String,
    pub port: Option<u16>,
}

impl Links {
    /// `scheme://base[:port]path`: the platform's own site (its webhooks, sign-up).
    pub fn platform(&self, path: &str) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{port}{path}", self.scheme, self.base_domain)
    }

    pub fn clinic(&self, slug: &str, path: &str) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{slug}.{}{port}{path}", self.scheme, self.base_domain)
    }
}
