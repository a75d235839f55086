//! Finding a patient from one search box: a name (any order, each word the start of the
//! given or family name), a date of birth (1984-03-27, or day and month in either order —
//! 27/3/1984 or 3/27/1984; an ambiguous 3/4/1984 finds both dates), part of an
//! email address (anything with an @) or a phone number (its digits). Results page
//! [`PAGE_SIZE`] at a time; the patients shown are audited, as any list is.

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use super::{Patient, Row};
use crate::audit::{self, Action, AuditContext};
use crate::identity::scope::StaffScope;
use crate::ids::PatientId;

pub const PAGE_SIZE: i64 = 25;

/// What one search box's text is taken to mean.
#[derive(Debug, PartialEq, Eq)]
enum Query {
    All,
    /// Every date the text can mean (two when day and month could be either way round).
    Born(Vec<NaiveDate>),
    Email(String),
    Phone(String),
    Name(Vec<String>),
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn as_dates(text: &str) -> Vec<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return vec![d];
    }
    let parts: Vec<&str> = text
        .split(|c: char| c == '/' || c == '.' || c == '-' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    let [a, b, y] = parts.as_slice() else {
        return Vec::new();
    };
    let (Ok(a), Ok(b), Ok(y)) = (a.parse::<u32>(), b.parse::<u32>(), y.parse::<i32>()) else {
        return Vec::new();
    };
    if y < 1000 {
        return Vec::new();
    }
    let mut dates: Vec<NaiveDate> = [
        NaiveDate::from_ymd_opt(y, b, a),
        NaiveDate::from_ymd_opt(y, a, b),
    ]
    .into_iter()
    .flatten()
    .collect();
    dates.dedup();
    dates
}

fn parse(text: &str) -> Query {
    let text = text.trim();
    if text.is_empty() {
        return Query::All;
    }
    let dates = as_dates(text);
    if !dates.is_empty() {
        return Query::Born(dates);
    }
    if text.contains('@') {
        return Query::Email(format!("%{}%", like_escape(&text.to_lowercase())));
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let phone_like = text
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if phone_like && digits.len() >= 3 {
        return Query::Phone(format!("%{digits}%"));
    }
    Query::Name(
        text.split_whitespace()
            .map(|w| format!("{}%", like_escape(&w.to_lowercase())))
            .collect(),
    )
}

/// One page of results and how many there are in all.
#[derive(Debug)]
pub struct SearchPage {
    pub patients: Vec<Patient>,
    pub total: i64,
}

/// Patients matching `text`, by family then given name, `page` counted from 0.
pub async fn search(
    tx: &mut TenantTx,
    staff: &StaffScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
    text: &str,
    page: i64,
) -> Result<SearchPage, sqlx::Error> {
    let _ = staff;
    let (born, email, phone, words) = match parse(text) {
        Query::All => (None, None, None, None),
        Query::Born(d) => (Some(d), None, None, None),
        Query::Email(e) => (None, Some(e), None, None),
        Query::Phone(p) => (None, None, Some(p), None),
        Query::Name(w) => (None, None, None, Some(w)),
    };
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM patients p
           WHERE ($1::date[] IS NULL OR p.date_of_birth = ANY($1))
             AND ($2::text IS NULL OR lower(coalesce(p.email, '')) LIKE $2)
             AND ($3::text IS NULL OR regexp_replace(coalesce(p.phone, ''), '\D', '', 'g') LIKE $3)
             AND ($4::text[] IS NULL OR NOT EXISTS (
                   SELECT 1 FROM unnest($4::text[]) w
                   WHERE NOT (lower(p.given_name) LIKE w OR lower(p.family_name) LIKE w)))"#,
        born.as_deref(),
        email,
        phone,
        words.as_deref(),
    )
    .fetch_one(tx.conn())
    .await?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT p.id, p.given_name, p.family_name, p.date_of_birth, p.email, p.phone,
                  u.status AS "account_status?"
           FROM patients p LEFT JOIN users u ON u.patient_id = p.id AND u.role = 'patient'
           WHERE ($1::date[] IS NULL OR p.date_of_birth = ANY($1))
             AND ($2::text IS NULL OR lower(coalesce(p.email, '')) LIKE $2)
             AND ($3::text IS NULL OR regexp_replace(coalesce(p.phone, ''), '\D', '', 'g') LIKE $3)
             AND ($4::text[] IS NULL OR NOT EXISTS (
                   SELECT 1 FROM unnest($4::text[]) w
                   WHERE NOT (lower(p.given_name) LIKE w OR lower(p.family_name) LIKE w)))
           ORDER BY lower(p.family_name), lower(p.given_name), p.id
           LIMIT $5 OFFSET $6"#,
        born.as_deref(),
        email,
        phone,
        words.as_deref(),
        PAGE_SIZE,
        page.max(0) * PAGE_SIZE,
    )
    .fetch_all(tx.conn())
    .await?;
    audit::record_list(
        tx,
        ctx,
        now,
        Action::PatientSearch,
        "patient",
        rows.iter().map(|r| PatientId::from_uuid(r.id)),
    )
    .await?;
    Ok(SearchPage {
        patients: rows.into_iter().map(Patient::from).collect(),
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::{Query, parse};
    use chrono::NaiveDate;

    #[test]
    fn one_box_reads_names_dates_emails_and_phones() {
        let born = NaiveDate::from_ymd_opt(1984, 3, 27).unwrap();
        assert_eq!(parse("  "), Query::All);
        assert_eq!(parse("27/3/1984"), Query::Born(vec![born]));
        assert_eq!(parse("3/27/1984"), Query::Born(vec![born]), "US order");
        assert_eq!(parse("27 03 1984"), Query::Born(vec![born]));
        assert_eq!(parse("1984-03-27"), Query::Born(vec![born]));
        let (april, march) = (
            NaiveDate::from_ymd_opt(1984, 4, 3).unwrap(),
            NaiveDate::from_ymd_opt(1984, 3, 4).unwrap(),
        );
        assert_eq!(
            parse("3/4/1984"),
            Query::Born(vec![april, march]),
            "either way round"
        );
        assert_eq!(parse("Ana@Mail"), Query::Email("%ana@mail%".into()));
        assert_eq!(parse("(555) 010-42"), Query::Phone("%55501042%".into()));
        assert_eq!(
            parse("lima ANA"),
            Query::Name(vec!["lima%".into(), "ana%".into()])
        );
        // Wildcards typed by a person are matched literally.
        assert_eq!(parse("a%_"), Query::Name(vec!["a\\%\\_%".into()]));
    }
}
