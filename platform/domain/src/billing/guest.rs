//! Paying a statement without signing in: each issued statement carries a code of 12
//! characters (60 random bits, Crockford's base 32: no I, L, O or U to misread), printed as
//! `K7QF-M2X9-PA4D`. The code opens only what is due and the clinic's name — never the
//! patient's name or the services — and only while something is due.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;
use rand::Rng;

use super::{Currency, Money};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::ids::{PatientId, StatementId};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new random code.
pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..32)]))
        .collect()
}

/// What a person typed, as a code: case, spaces and dashes ignored, and the letters people
/// confuse read as the digits they look like. `None` if it cannot be one.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            other => other,
        })
        .collect();
    (code.len() == 12 && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// `K7QFM2X9PA4D` → `K7QF-M2X9-PA4D`.
pub fn display(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// What someone with the code sees.
#[derive(Debug, Clone)]
pub struct GuestStatement {
    pub statement: StatementId,
    pub number: i64,
    pub due: Money,
    /// Issued and not voided (a voided one takes nothing).
    pub open: bool,
}

/// The statement a code opens. Audited as the clinic's system (nobody is signed in), so the
/// patient's access report shows it was looked at by code.
pub async fn find(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<GuestStatement>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT s.id, s.number, s.patient_id, s.status, s.currency,
                  coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                            WHERE e.statement_id = s.id), 0)::bigint AS "due!"
           FROM statements s WHERE s.guest_code = $1 AND s.status <> 'draft'"#,
        code
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    audit::record(
        tx,
        &ctx.automatic(),
        now,
        AuditEvent::new(Action::GuestPayView, "statements")
            .resource(StatementId::from_uuid(r.id))
            .patient(PatientId::from_uuid(r.patient_id)),
    )
    .await?;
    Ok(Some(GuestStatement {
        statement: StatementId::from_uuid(r.id),
        number: r.number,
        due: Money::new(r.due, Currency::parse(&r.currency).unwrap_or(Currency::USD)),
        open: r.status == "issued",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_how_people_type_them() {
        let code = new_code();
        assert_eq!(code.len(), 12);
        assert_eq!(normalize(&code), Some(code.clone()));
        assert_eq!(
            normalize(&display(&code).to_lowercase()),
            Some(code.clone())
        );
        assert_eq!(normalize(" k7qf-m2x9-pa4d "), Some("K7QFM2X9PA4D".into()));
        assert_eq!(normalize("K7QF-M2X9-PA4O"), Some("K7QFM2X9PA40".into()));
        assert_eq!(normalize("K7QF-M2X9-PA4"), None);
        assert_eq!(normalize("K7QF-M2X9-PA4U"), None);
        assert_eq!(display("K7QFM2X9PA4D"), "K7QF-M2X9-PA4D");
    }
}
