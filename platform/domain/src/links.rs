//! Absolute links to a clinic's site, for emails.

/// Builds `scheme://slug.base-domain[:port]/path`.
#[derive(Clone, Debug)]
pub struct Links {
    pub scheme: String,
    pub base_domain: String,
    pub port: Option<u16>,
}

impl Links {
    pub fn clinic(&self, slug: &str, path: &str) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{slug}.{}{port}{path}", self.scheme, self.base_domain)
    }
}
