//! Money as integer minor units with an ISO 4217 currency: never a float. Amounts people type
//! ("12.50", "$1,204.00") are parsed exactly, in the currency's own number of decimals.

use std::fmt;

/// An ISO 4217 currency code (three capital letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(raw: &str) -> Result<Self, MoneyError> {
        let up = raw.trim().to_ascii_uppercase();
        match <[u8; 3]>::try_from(up.as_bytes()) {
            Ok(b) if b.iter().all(u8::is_ascii_uppercase) => Ok(Currency(b)),
            _ => Err(MoneyError::Currency),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII capitals are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (ISO 4217's minor unit): 0 for the yen and the like,
    /// 3 for the dinars, 2 for everything else.
    pub fn decimals(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    /// A symbol people read before the amount, where one is unambiguous for this product's
    /// clinics; other currencies print their code after the amount.
    fn symbol(&self) -> Option<&'static str> {
        match self.as_str() {
            "USD" => Some("$"),
            "EUR" => Some("€"),
            "GBP" => Some("£"),
            _ => None,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with an amount or a currency, in words for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("Enter an amount, like 25.00.")]
    Empty,
    #[error("Enter the amount in numbers, like 25.00.")]
    NotANumber,
    #[error("Enter the amount with at most {0} digits after the decimal point.")]
    TooPrecise(u32),
    #[error("That amount is too large.")]
    TooLarge,
    #[error("Enter a currency code like USD.")]
    Currency,
}

/// An amount of money: minor units (cents) and their currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

/// The largest amount anyone may type: ten million in major units. A bill is never near it;
/// far below it, no sum of lines overflows.
const MAX_MAJOR: i64 = 10_000_000;

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Parses what a person typed: digits with an optional decimal point, thousands commas
    /// and a leading currency symbol allowed; no sign (a refund or a payment is its own kind
    /// of thing, never a negative amount).
    pub fn parse(raw: &str, currency: Currency) -> Result<Money, MoneyError> {
        let cleaned: String = raw
            .trim()
            .trim_start_matches(['$', '€', '£'])
            .chars()
            .filter(|c| *c != ',' && !c.is_whitespace())
            .collect();
        if cleaned.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (whole, frac) = match cleaned.split_once('.') {
            Some((w, f)) => (w, f),
            None => (cleaned.as_str(), ""),
        };
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if !digits(whole) || !digits(frac) || (whole.is_empty() && frac.is_empty()) {
            return Err(MoneyError::NotANumber);
        }
        let places = currency.decimals();
        let frac = frac.trim_end_matches('0');
        if frac.len() > places as usize {
            return Err(MoneyError::TooPrecise(places));
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else if whole.len() > 9 {
            return Err(MoneyError::TooLarge);
        } else {
            whole.parse().map_err(|_| MoneyError::NotANumber)?
        };
        if whole > MAX_MAJOR {
            return Err(MoneyError::TooLarge);
        }
        let scale = 10_i64.pow(places);
        let frac_minor: i64 = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<width$}", width = places as usize);
            padded.parse().map_err(|_| MoneyError::NotANumber)?
        };
        Ok(Money::new(whole * scale + frac_minor, currency))
    }

    /// The amount as typed into a form again ("1204.50"), no symbol or separators.
    pub fn plain(&self) -> String {
        let places = self.currency.decimals();
        let scale = 10_i64.pow(places);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let (whole, frac) = (abs / scale as u64, abs % scale as u64);
        if places == 0 {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{frac:0width$}", width = places as usize)
        }
    }
}

impl fmt::Display for Money {
    /// "$1,204.50", "-$20.00", "1,204.500 KWD".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = Money::new(self.minor.abs(), self.currency).plain();
        let (whole, frac) = match plain.split_once('.') {
            Some((w, r)) => (w.to_owned(), format!(".{r}")),
            None => (plain.clone(), String::new()),
        };
        let mut grouped = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if self.minor < 0 { "-" } else { "" };
        match self.currency.symbol() {
            Some(sym) => write!(f, "{sign}{sym}{grouped}{frac}"),
            None => write!(f, "{sign}{grouped}{frac} {}", self.currency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(raw: &str) -> Result<i64, MoneyError> {
        Money::parse(raw, Currency::USD).map(|m| m.minor)
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(usd("12.34"), Ok(1234));
        assert_eq!(usd("$1,204.5"), Ok(120_450));
        assert_eq!(usd("0.10"), Ok(10));
        assert_eq!(usd(".5"), Ok(50));
        assert_eq!(usd("7"), Ok(700));
        assert_eq!(usd("7.000"), Ok(700));
        assert_eq!(usd(""), Err(MoneyError::Empty));
        assert_eq!(usd("-5"), Err(MoneyError::NotANumber));
        assert_eq!(usd("1e3"), Err(MoneyError::NotANumber));
        assert_eq!(usd("."), Err(MoneyError::NotANumber));
        assert_eq!(usd("1.234"), Err(MoneyError::TooPrecise(2)));
        assert_eq!(usd("10000001"), Err(MoneyError::TooLarge));
        assert_eq!(usd("99999999999999999999"), Err(MoneyError::TooLarge));
        let yen = Currency::parse("jpy").unwrap();
        assert_eq!(Money::parse("1500", yen).map(|m| m.minor), Ok(1500));
        assert_eq!(Money::parse("1500.5", yen), Err(MoneyError::TooPrecise(0)));
    }

    #[test]
    fn amounts_print_for_people() {
        assert_eq!(Money::new(120_450, Currency::USD).to_string(), "$1,204.50");
        assert_eq!(Money::new(-2000, Currency::USD).to_string(), "-$20.00");
        assert_eq!(Money::new(5, Currency::USD).to_string(), "$0.05");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::new(1_204_500, kwd).to_string(), "1,204.500 KWD");
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U$D").is_err());
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_same_amount(minor in 0i64..1_000_000_000) {
            let m = Money::new(minor, Currency::USD);
            prop_assert_eq!(Money::parse(&m.plain(), Currency::USD), Ok(m));
            prop_assert_eq!(Money::parse(&m.to_string(), Currency::USD), Ok(m));
        }
    }
}
