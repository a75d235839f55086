//! Identifiers spliced into DDL. Role and schema names are generated from validated values,
//! so this only double-checks and quotes them; it never sees user text.

/// Quotes a generated identifier, refusing anything outside `[a-z0-9_]`.
pub(crate) fn ident(name: &str) -> Result<String, sqlx::Error> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(format!("\"{name}\""))
    } else {
        Err(sqlx::Error::Protocol(format!(
            "refusing unsafe identifier {name:?}"
        )))
    }
}
