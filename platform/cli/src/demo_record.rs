//! A realistic multi-year health record as a FHIR R4 transaction Bundle of the shape Synthea
//! and EHR exports write: `urn:uuid:` fullUrls and plain POST entries, no identifiers on
//! observations, US Core profiles, vital-sign panels with blood-pressure components, repeated
//! lab panels (so trends show), and notes as DocumentReferences with inline text. Deterministic
//! for a given patient, visit count and `now`, so importing it again changes nothing. `portal
//! demo` imports it for every demo patient; the tests and the benchmark use it too.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// Whose record.
#[derive(Debug, Clone)]
pub struct Person<'a> {
    pub given: &'a str,
    pub family: &'a str,
    /// YYYY-MM-DD.
    pub birth_date: &'a str,
    pub email: &'a str,
    /// The MRN the "EHR" knows the patient by.
    pub mrn: &'a str,
}

/// The identifier system of the demo EHR's medical record numbers.
pub const MRN_SYSTEM: &str = "https://ehr.demo.portal.example/mrn";

struct Gen {
    seed: u64,
    n: u64,
    entries: Vec<Value>,
}

impl Gen {
    /// A stable fullUrl: the same person and position give the same one on every run.
    fn url(&mut self) -> String {
        self.n += 1;
        let x = (u128::from(self.seed) << 64) | u128::from(self.n);
        let mut u = x.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        // Version 4 and variant bits, so it reads as an ordinary UUID.
        u = (u & !(0xf << 76)) | (0x4 << 76);
        u = (u & !(0x3 << 62)) | (0x2 << 62);
        format!("urn:uuid:{}", uuid::Uuid::from_u128(u))
    }

    /// A repeatable number in 0..1 for this person and draw.
    fn unit(&mut self) -> f64 {
        self.n += 1;
        let mut x = self.seed ^ self.n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn around(&mut self, mid: f64, spread: f64, digits: i32) -> f64 {
        let v = mid + (self.unit() - 0.5) * 2.0 * spread;
        let f = 10f64.powi(digits);
        (v * f).round() / f
    }

    fn push(&mut self, url: &str, resource: Value) {
        let rtype = resource["resourceType"].as_str().unwrap_or("").to_owned();
        self.entries.push(json!({
            "fullUrl": url,
            "resource": resource,
            "request": { "method": "POST", "url": rtype },
        }));
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display })
}

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const UCUM: &str = "http://unitsofmeasure.org";

fn profile(name: &str) -> Value {
    json!({ "profile": [format!("http://hl7.org/fhir/us/core/StructureDefinition/{name}")] })
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// One lab value: LOINC, name, unit, low, high, centre, spread, digits, yearly drift.
type Analyte = (
    &'static str,
    &'static str,
    &'static str,
    f64,
    f64,
    f64,
    f64,
    i32,
    f64,
);

const PANELS: [(&str, &str, &[Analyte]); 4] = [
    (
        "51990-0",
        "Basic metabolic panel",
        &[
            ("2345-7", "Glucose", "mg/dL", 70.0, 99.0, 92.0, 8.0, 0, 2.2),
            ("2160-0", "Creatinine", "mg/dL", 0.6, 1.3, 0.9, 0.15, 2, 0.0),
            (
                "2951-2", "Sodium", "mmol/L", 136.0, 145.0, 140.0, 3.0, 0, 0.0,
            ),
            ("2823-3", "Potassium", "mmol/L", 3.5, 5.1, 4.2, 0.4, 1, 0.0),
            (
                "3094-0",
                "Urea nitrogen",
                "mg/dL",
                7.0,
                20.0,
                14.0,
                4.0,
                0,
                0.0,
            ),
            ("17861-6", "Calcium", "mg/dL", 8.6, 10.3, 9.4, 0.5, 1, 0.0),
        ],
    ),
    (
        "57698-3",
        "Lipid panel",
        &[
            (
                "2093-3",
                "Total cholesterol",
                "mg/dL",
                100.0,
                199.0,
                185.0,
                20.0,
                0,
                3.0,
            ),
            (
                "2085-9",
                "HDL cholesterol",
                "mg/dL",
                40.0,
                90.0,
                52.0,
                8.0,
                0,
                0.0,
            ),
            (
                "18262-6",
                "LDL cholesterol",
                "mg/dL",
                0.0,
                129.0,
                112.0,
                18.0,
                0,
                2.5,
            ),
            (
                "2571-8",
                "Triglycerides",
                "mg/dL",
                0.0,
                149.0,
                130.0,
                35.0,
                0,
                0.0,
            ),
        ],
    ),
    (
        "58410-2",
        "Complete blood count",
        &[
            ("718-7", "Hemoglobin", "g/dL", 12.0, 17.5, 14.0, 1.0, 1, 0.0),
            (
                "6690-2",
                "White blood cells",
                "10*3/uL",
                4.5,
                11.0,
                6.8,
                1.8,
                1,
                0.0,
            ),
            (
                "777-3",
                "Platelets",
                "10*3/uL",
                150.0,
                400.0,
                250.0,
                50.0,
                0,
                0.0,
            ),
        ],
    ),
    (
        "4548-4",
        "Hemoglobin A1c",
        &[("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6, 5.5, 0.2, 1, 0.08)],
    ),
];

/// The record: `visits` wellness and acute visits four months apart before `now`, each with
/// vital signs, a note and, at wellness visits (every third), the lab panels.
pub fn bundle(p: &Person<'_>, visits: usize, now: DateTime<Utc>) -> Value {
    bundle_with(p, visits, 122, now)
}

/// The same with visits `spacing_days` apart (the benchmark's dense ten-year record).
pub fn bundle_with(p: &Person<'_>, visits: usize, spacing_days: i64, now: DateTime<Utc>) -> Value {
    // The entries' fullUrls come from the MRN and the spacing, so the demo's record and the
    // benchmark's dense one for the same patient never take each other's places.
    let seed = p
        .mrn
        .bytes()
        .chain(spacing_days.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let mut g = Gen {
        seed,
        n: 0,
        entries: Vec::new(),
    };
    let patient = g.url();
    g.push(
        &patient,
        json!({
            "resourceType": "Patient",
            "meta": profile("us-core-patient"),
            "identifier": [{
                "type": coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"),
                "system": MRN_SYSTEM, "value": p.mrn,
            }],
            "name": [{ "use": "official", "family": p.family, "given": [p.given] }],
            "telecom": [{ "system": "email", "value": p.email }],
            "birthDate": p.birth_date,
        }),
    );
    let doctor = g.url();
    g.push(
        &doctor,
        json!({
            "resourceType": "Practitioner",
            "meta": profile("us-core-practitioner"),
            "name": [{ "family": "Clinician", "given": ["Casey"], "prefix": ["Dr."] }],
        }),
    );
    let lab = g.url();
    g.push(
        &lab,
        json!({ "resourceType": "Organization", "meta": profile("us-core-organization"), "name": "Sunrise Reference Laboratory" }),
    );
    let subject = json!({ "reference": patient });

    // Visits every four months, the oldest first; every third is a wellness visit.
    let first = now - Duration::days(spacing_days * visits as i64) - Duration::days(10);
    let mut wellness_count = 0.0;
    for v in 0..visits {
        let at = first + Duration::days(spacing_days * v as i64) + Duration::hours(14);
        let years = (at - first).num_days() as f64 / 365.0;
        let wellness = v % 3 == 0;
        let enc = g.url();
        let (etype, reason) = if wellness {
            (
                coding(SNOMED, "162673000", "General examination of patient"),
                "Annual wellness visit",
            )
        } else {
            (
                coding(SNOMED, "185345009", "Encounter for symptom"),
                "Follow-up visit",
            )
        };
        let mut etype = etype;
        etype["text"] = json!(reason);
        g.push(
            &enc,
            json!({
                "resourceType": "Encounter",
                "meta": profile("us-core-encounter"),
                "status": "finished",
                "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory" },
                "type": [etype],
                "subject": subject,
                "participant": [{ "individual": { "reference": doctor, "display": "Dr. Casey Clinician" } }],
                "period": { "start": stamp(at), "end": stamp(at + Duration::minutes(30)) },
                "reasonCode": [coding(SNOMED, "38341003", "Hypertension")],
            }),
        );
        let eref = json!({ "reference": enc });
        // Vital signs: blood pressure as a panel of two components, then single values.
        let sys = g.around(128.0 + years * 0.8, 9.0, 0);
        let dia = g.around(82.0, 6.0, 0);
        let bp = g.url();
        g.push(
            &bp,
            json!({
                "resourceType": "Observation",
                "meta": profile("us-core-blood-pressure"),
                "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
                "code": coding(LOINC, "85354-9", "Blood pressure panel"),
                "subject": subject, "encounter": eref,
                "effectiveDateTime": stamp(at),
                "component": [
                    { "code": coding(LOINC, "8480-6", "Systolic blood pressure"),
                      "valueQuantity": { "value": sys, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]" },
                      "referenceRange": [{ "high": { "value": 129.0 } }] },
                    { "code": coding(LOINC, "8462-4", "Diastolic blood pressure"),
                      "valueQuantity": { "value": dia, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]" },
                      "referenceRange": [{ "high": { "value": 84.0 } }] },
                ],
            }),
        );
        let weight = g.around(78.0 + years * 0.4, 1.5, 1);
        let height = 172.0;
        let vitals: [(&str, &str, f64, &str); 5] = [
            ("8867-4", "Heart rate", g.around(72.0, 8.0, 0), "/min"),
            ("29463-7", "Body weight", weight, "kg"),
            ("8302-2", "Body height", height, "cm"),
            (
                "39156-5",
                "Body mass index",
                ((weight / (1.72 * 1.72)) * 10.0).round() / 10.0,
                "kg/m2",
            ),
            ("8310-5", "Body temperature", g.around(36.8, 0.3, 1), "Cel"),
        ];
        for (code, name, value, unit) in vitals {
            let u = g.url();
            g.push(
                &u,
                json!({
                    "resourceType": "Observation",
                    "meta": profile("us-core-vital-signs"),
                    "status": "final",
                    "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
                    "code": coding(LOINC, code, name),
                    "subject": subject, "encounter": eref,
                    "effectiveDateTime": stamp(at),
                    "valueQuantity": { "value": value, "unit": unit, "system": UCUM, "code": unit },
                }),
            );
        }
        let spo2 = g.url();
        let spo2_value = g.around(97.5, 1.5, 0);
        g.push(
            &spo2,
            json!({
                "resourceType": "Observation",
                "meta": profile("us-core-pulse-oximetry"),
                "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
                "code": coding(LOINC, "59408-5", "Oxygen saturation by pulse oximetry"),
                "subject": subject, "encounter": eref,
                "effectiveDateTime": stamp(at),
                "valueQuantity": { "value": spo2_value, "unit": "%", "system": UCUM, "code": "%" },
                "referenceRange": [{ "low": { "value": 95.0 }, "high": { "value": 100.0 } }],
            }),
        );
        if wellness {
            wellness_count += 1.0;
            let collected = at - Duration::days(3);
            let issued = collected + Duration::hours(20);
            for (panel_code, panel_name, analytes) in PANELS {
                let mut results = Vec::new();
                for (code, name, unit, low, high, mid, spread, digits, drift) in
                    analytes.iter().copied()
                {
                    let value = g.around(mid + drift * wellness_count, spread, digits);
                    let flag = if value < low {
                        "L"
                    } else if value > high {
                        "H"
                    } else {
                        "N"
                    };
                    let u = g.url();
                    g.push(
                        &u,
                        json!({
                            "resourceType": "Observation",
                            "meta": profile("us-core-observation-lab"),
                            "status": "final",
                            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
                            "code": coding(LOINC, code, name),
                            "subject": subject, "encounter": eref,
                            "effectiveDateTime": stamp(collected),
                            "issued": stamp(issued),
                            "valueQuantity": { "value": value, "unit": unit, "system": UCUM, "code": unit },
                            "referenceRange": [{ "low": { "value": low }, "high": { "value": high } }],
                            "interpretation": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag }] }],
                        }),
                    );
                    results.push(json!({ "reference": u }));
                }
                let r = g.url();
                g.push(
                    &r,
                    json!({
                        "resourceType": "DiagnosticReport",
                        "meta": profile("us-core-diagnosticreport-lab"),
                        "status": "final",
                        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB" }] }],
                        "code": coding(LOINC, panel_code, panel_name),
                        "subject": subject, "encounter": eref,
                        "effectiveDateTime": stamp(collected),
                        "issued": stamp(issued),
                        "performer": [{ "reference": lab }],
                        "result": results,
                    }),
                );
            }
            let flu = g.url();
            g.push(
                &flu,
                json!({
                    "resourceType": "Immunization",
                    "meta": profile("us-core-immunization"),
                    "status": "completed",
                    "vaccineCode": coding(CVX, "150", "Influenza, injectable, quadrivalent, preservative free"),
                    "patient": subject, "encounter": eref,
                    "occurrenceDateTime": stamp(at),
                    "lotNumber": format!("FL{:04}", 1000 + v * 7),
                    "site": { "text": "Left arm" },
                    "performer": [{ "actor": { "reference": doctor } }],
                    "primarySource": true,
                }),
            );
        }
        let note = format!(
            "{reason} with Dr. Casey Clinician.\n\nBlood pressure {sys:.0}/{dia:.0} mm[Hg], weight {weight} kg.\n\nPlan: keep taking lisinopril; walk 30 minutes most days; come back in four months."
        );
        let doc = g.url();
        g.push(
            &doc,
            json!({
                "resourceType": "DocumentReference",
                "meta": profile("us-core-documentreference"),
                "status": "current",
                "type": coding(LOINC, "11506-3", "Progress note"),
                "category": [{ "coding": [{ "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note" }] }],
                "subject": subject,
                "date": stamp(at + Duration::hours(2)),
                "author": [{ "reference": doctor }],
                "content": [{ "attachment": {
                    "contentType": "text/plain",
                    "data": base64::engine::general_purpose::STANDARD.encode(note.as_bytes()),
                } }],
                "context": { "encounter": [eref] },
            }),
        );
    }

    // The standing parts of the chart, dated from the first visit.
    let start = first + Duration::hours(14);
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let conditions = [
        (
            ICD10,
            "I10",
            "Essential (primary) hypertension",
            "active",
            None,
        ),
        (ICD10, "R73.03", "Prediabetes", "active", None),
        (
            SNOMED,
            "444814009",
            "Viral sinusitis",
            "resolved",
            Some(start + Duration::days(20)),
        ),
    ];
    for (system, code, name, status, abated) in conditions {
        let u = g.url();
        let mut c = json!({
            "resourceType": "Condition",
            "meta": profile("us-core-condition-problems-health-concerns"),
            "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/condition-clinical", status, status),
            "verificationStatus": coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item" }] }],
            "code": coding(system, code, name),
            "subject": subject,
            "onsetDateTime": stamp(start),
        });
        if let Some(a) = abated {
            c["abatementDateTime"] = json!(stamp(a));
        }
        g.push(&u, c);
    }
    for (system, code, name, reaction) in [
        (RXNORM, "7980", "Penicillin G", "Hives"),
        (SNOMED, "256349002", "Peanut", "Swelling of the lips"),
    ] {
        let u = g.url();
        g.push(
            &u,
            json!({
                "resourceType": "AllergyIntolerance",
                "meta": profile("us-core-allergyintolerance"),
                "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
                "verificationStatus": coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
                "code": coding(system, code, name),
                "patient": subject,
                "reaction": [{ "manifestation": [{ "text": reaction }], "severity": "moderate" }],
            }),
        );
    }
    let meds = [
        (
            "314076",
            "Lisinopril 10 MG Oral Tablet",
            "active",
            1,
            "Take in the morning.",
        ),
        (
            "617312",
            "Atorvastatin 10 MG Oral Tablet",
            "active",
            1,
            "Take at bedtime.",
        ),
        (
            "308182",
            "Amoxicillin 250 MG Oral Capsule",
            "completed",
            3,
            "Finish the course.",
        ),
    ];
    for (code, name, status, per_day, instruction) in meds {
        let u = g.url();
        g.push(
            &u,
            json!({
                "resourceType": "MedicationRequest",
                "meta": profile("us-core-medicationrequest"),
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": coding(RXNORM, code, name),
                "subject": subject,
                "authoredOn": day(start),
                "requester": { "reference": doctor },
                "dosageInstruction": [{
                    "text": format!("1 tablet {per_day} time(s) a day"),
                    "patientInstruction": instruction,
                    "timing": { "repeat": { "frequency": per_day, "period": 1, "periodUnit": "d" } },
                    "route": coding(SNOMED, "26643006", "Oral"),
                    "doseAndRate": [{ "doseQuantity": { "value": 1, "unit": "tablet" } }],
                }],
                "dispenseRequest": { "numberOfRepeatsAllowed": 3, "quantity": { "value": 90, "unit": "tablet" } },
            }),
        );
    }
    let tdap = g.url();
    g.push(
        &tdap,
        json!({
            "resourceType": "Immunization",
            "meta": profile("us-core-immunization"),
            "status": "completed",
            "vaccineCode": coding(CVX, "115", "Tdap"),
            "patient": subject,
            "occurrenceDateTime": stamp(start + Duration::days(30)),
            "lotNumber": "TD2231",
            "protocolApplied": [{ "doseNumberPositiveInt": 1 }],
            "primarySource": true,
        }),
    );
    let procedure = g.url();
    g.push(
        &procedure,
        json!({
            "resourceType": "Procedure",
            "meta": profile("us-core-procedure"),
            "status": "completed",
            "code": coding(SNOMED, "73761001", "Colonoscopy"),
            "subject": subject,
            "performedDateTime": stamp(start + Duration::days(60)),
        }),
    );
    let plan = g.url();
    g.push(
        &plan,
        json!({
            "resourceType": "CarePlan",
            "meta": profile("us-core-careplan"),
            "status": "active",
            "intent": "plan",
            "title": "Blood pressure self-management",
            "description": "Keep blood pressure under 130/80 with medicine, movement and less salt.",
            "category": [coding(SNOMED, "736285004", "Hypertension clinical management plan")],
            "subject": subject,
            "period": { "start": day(start) },
            "activity": [
                { "detail": { "code": { "text": "Check blood pressure at home twice a week" }, "status": "in-progress" } },
                { "detail": { "code": { "text": "Walk 30 minutes most days" }, "status": "in-progress" } },
                { "detail": { "code": { "text": "Less than 2 g of salt a day" }, "status": "in-progress" } },
            ],
        }),
    );
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": g.entries })
}
