//! Small helpers for correct English on pages: counts with the right plural, possessives, and
//! the one date format every page uses ("Wed 2 Dec 2026").

use chrono::NaiveDate;

/// "1 visit type", "3 visit types", "no visit types".
pub fn count(n: i64, one: &str, many: &str) -> String {
    match n {
        0 => format!("no {many}"),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// "Ana Lima's", "Maple Leaf Pediatrics'".
pub fn possessive(name: &str) -> String {
    if name.ends_with('s') || name.ends_with('S') {
        format!("{name}’")
    } else {
        format!("{name}’s")
    }
}

/// A stored phone number as people read it: North American numbers as "+1 555-010-4001",
/// anything else as stored.
pub fn phone(e164: &str) -> String {
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    match (e164.starts_with("+1"), digits.len()) {
        (true, 11) => format!("+1 {}-{}-{}", &digits[1..4], &digits[4..7], &digits[7..11]),
        _ => e164.to_owned(),
    }
}

/// A date as every page writes it: "Wed 2 Dec 2026".
pub fn date(d: NaiveDate) -> String {
    d.format("%a %-d %b %Y").to_string()
}

/// A date of birth: "27 Mar 1984" (the weekday means nothing here).
pub fn birth_date(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_possessives_and_dates_read_right() {
        assert_eq!(count(1, "visit type", "visit types"), "1 visit type");
        assert_eq!(count(3, "visit type", "visit types"), "3 visit types");
        assert_eq!(count(0, "visit", "visits"), "no visits");
        assert_eq!(
            possessive("Maple Leaf Pediatrics"),
            "Maple Leaf Pediatrics’"
        );
        assert_eq!(possessive("Ana Lima"), "Ana Lima’s");
        let d = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(date(d), "Wed 2 Dec 2026");
        assert_eq!(birth_date(d), "2 Dec 2026");
        assert_eq!(phone("+15550104001"), "+1 555-010-4001");
        assert_eq!(phone("+442071234567"), "+442071234567");
    }
}
