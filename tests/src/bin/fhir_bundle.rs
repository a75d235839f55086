//! Writes a demo-shaped FHIR R4 transaction bundle to stdout, for the record benchmark
//! (`infra/bench record`): `fhir_bundle <mrn> <given> <family> <birth date> <visits>
//! <days between visits>`. Not a test.

use portal::demo_record::{Person, bundle_with};
use portal_domain::clock::{Clock, SystemClock};

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mrn, given, family, born, visits, spacing] = args.as_slice() else {
        eprintln!("usage: fhir_bundle <mrn> <given> <family> <YYYY-MM-DD> <visits> <days apart>");
        std::process::exit(2);
    };
    let email = format!("{}@bench.example", mrn.to_lowercase());
    let person = Person {
        given,
        family,
        birth_date: born,
        email: &email,
        mrn,
    };
    let visits: usize = visits.parse().expect("visits");
    let spacing: i64 = spacing.parse().expect("days apart");
    let b = bundle_with(&person, visits, spacing, SystemClock.now());
    println!("{b}");
}
