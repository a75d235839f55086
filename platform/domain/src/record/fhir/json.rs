//! Reading FHIR JSON: paths, codings and FHIR's date forms. FHIR resources are read as
//! `serde_json::Value` and only the elements the record keeps are looked at; everything else
//! a generator emits (extensions, narrative, US Core profile tags) is left alone.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::record::CodeSystem;

/// The string at a path of object keys and array indexes (`"code.coding.0.code"`).
pub fn text<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path)?.as_str().filter(|s| !s.trim().is_empty())
}

pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = match part.parse::<usize>() {
            Ok(i) => cur.get(i)?,
            Err(_) => cur.get(part)?,
        };
    }
    Some(cur)
}

pub fn array<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A CodeableConcept's codes: (system, code, display) for each coding whose system we know.
pub fn codings(concept: Option<&Value>) -> Vec<(CodeSystem, String, Option<String>)> {
    let Some(c) = concept else {
        return Vec::new();
    };
    array(c, "coding")
        .iter()
        .filter_map(|coding| {
            let system = CodeSystem::from_uri(text(coding, "system")?)?;
            let code = text(coding, "code")?.trim().to_owned();
            Some((system, code, text(coding, "display").map(str::to_owned)))
        })
        .collect()
}

/// Whether a CodeableConcept has any coding at all (in a system we know or not).
pub fn has_codings(concept: Option<&Value>) -> bool {
    concept.is_some_and(|c| !array(c, "coding").is_empty())
}

/// The words for a CodeableConcept: its text, else its first coding's display.
pub fn concept_text(concept: Option<&Value>) -> Option<String> {
    let c = concept?;
    text(c, "text")
        .or_else(|| {
            array(c, "coding")
                .iter()
                .find_map(|coding| text(coding, "display"))
        })
        .map(|s| s.trim().to_owned())
}

/// A FHIR `date`, `dateTime` or `instant`: a full timestamp with its offset, or a date (or a
/// year, or a year and month) taken as the start of that day in UTC.
pub fn instant(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    // A dateTime without seconds' fraction but also without offset is not valid FHIR, but
    // some exports write it; read it as UTC.
    if let Ok(t) = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S") {
        return Some(Utc.from_utc_datetime(&t));
    }
    date(raw)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// A FHIR `date` (or the date part of a dateTime); partial dates take their first day.
pub fn date(raw: &str) -> Option<NaiveDate> {
    let head = raw.get(..10).unwrap_or(raw);
    NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(&format!("{head}-01"), "%Y-%m-%d").ok())
        .or_else(|| NaiveDate::parse_from_str(&format!("{head}-01-01"), "%Y-%m-%d").ok())
}

/// Base64 text of an inline attachment (`data`), as UTF-8.
pub fn attachment_text(att: &Value) -> Option<String> {
    use base64::Engine as _;
    let data = text(att, "data")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhir_dates_in_every_form() {
        assert_eq!(
            instant("2019-04-01T10:00:00-05:00").unwrap().to_rfc3339(),
            "2019-04-01T15:00:00+00:00"
        );
        assert_eq!(
            instant("2019-04-01").unwrap().to_rfc3339(),
            "2019-04-01T00:00:00+00:00"
        );
        assert_eq!(date("2019-04"), NaiveDate::from_ymd_opt(2019, 4, 1));
        assert_eq!(date("2019"), NaiveDate::from_ymd_opt(2019, 1, 1));
        assert_eq!(date("2019-02-30"), None);
        assert_eq!(instant("yesterday"), None);
    }
}
