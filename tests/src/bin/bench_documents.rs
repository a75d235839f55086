//! Documents benchmark (a benchmark, not a test). Three figures, in one run:
//! 1. typst render time (median, p95) of a one-page visit summary and an eight-page record
//!    summary, through the workers' own `Renderer` and template;
//! 2. headless Chromium printing the same content from HTML to PDF (`page.pdf()` on a warm
//!    browser, driven by `tests/browser/bench_chromium.mjs`), measured right after;
//! 3. documents per second end to end with one worker process: rows and `document.render`
//!    jobs queued together, measured until every document is ready (sealed and stored).
//!
//! Run with `infra/bench documents`; method and figures go in docs/BENCHMARKS.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal_domain::clock::{Clock, SystemClock};
use portal_domain::documents::printout::{self, Letterhead, Paragraph, Person, Printout, Section};
use portal_domain::ids::DocumentId;
use portal_domain::jobs::Job;
use portal_tests::TestDb;
use portal_workers::documents::{Renderer, TEMPLATE};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn section(heading: &str, columns: &[&str], rows: Vec<Vec<String>>) -> Section {
    Section {
        heading: heading.into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
        paragraphs: Vec::new(),
        empty: String::new(),
    }
}

fn base(title: &str, sections: Vec<Section>) -> Printout {
    let mut p = Printout {
        title: title.into(),
        clinic: Letterhead {
            name: "Sunrise Family Medicine".into(),
            colour: "#0b6e4f".into(),
            logo: None,
        },
        patient: Person {
            name: "Ana Lima".into(),
            born: "27 March 1984".into(),
        },
        generated: "Mon 30 Nov 2026, 4:20 PM (America/New_York)".into(),
        sections,
        digest: String::new(),
    };
    p.digest = printout::digest(&p);
    p
}

/// A visit's summary: one page.
fn visit_summary() -> Printout {
    base(
        "Visit summary",
        vec![
            section(
                "Visit",
                &["Date", "Type", "Seen by"],
                vec![vec![
                    "Tue 3 Nov 2026, 9:30 AM".into(),
                    "Annual check-up".into(),
                    "Dr. Maya Reyes".into(),
                ]],
            ),
            Section {
                heading: "After-visit summary".into(),
                paragraphs: vec![Paragraph {
                    heading: String::new(),
                    body: "Your blood pressure was a little high today. Keep taking lisinopril 10 mg each morning and check your blood pressure at home twice a week.\nCome back in three months, or sooner if you have headaches or dizziness.".into(),
                }],
                ..Section::default()
            },
            section(
                "Medicines",
                &["Medicine", "How to take it", "Started", "Status"],
                (0..6)
                    .map(|i| {
                        vec![
                            format!("Medicine {i} 10 mg tablet"),
                            "1 tablet, by mouth, once a day".into(),
                            "2 Mar 2024".into(),
                            "active".into(),
                        ]
                    })
                    .collect(),
            ),
        ],
    )
}

/// A whole record: about eight pages.
fn record_summary() -> Printout {
    let rows = |n: usize, f: &dyn Fn(usize) -> Vec<String>| (0..n).map(f).collect::<Vec<_>>();
    base(
        "Health record summary",
        vec![
            section("Conditions", &["Condition", "Since", "Status"], rows(20, &|i| {
                vec![format!("Condition number {i}, well controlled"), "4 Jan 2019".into(), "active".into()]
            })),
            section("Allergies", &["Substance", "Reaction", "Severity", "Status"], rows(6, &|i| {
                vec![format!("Substance {i}"), "Hives".into(), "moderate".into(), "active".into()]
            })),
            section("Medicines", &["Medicine", "How to take it", "Started", "Status"], rows(30, &|i| {
                vec![format!("Medicine {i} 20 mg tablet"), "1 tablet, by mouth, twice a day with food".into(), "2 Mar 2021".into(), "active".into()]
            })),
            section("Vaccines", &["Vaccine", "Date given", "Dose", "Lot", "Given by"], rows(40, &|i| {
                vec!["Influenza, injectable, quadrivalent".into(), format!("{} Oct {}", 1 + i % 28, 1990 + i), "1".into(), format!("LOT{i:05}"), "Sunrise Family Medicine".into()]
            })),
            section("Latest measurements", &["Measurement", "Value", "Taken"], rows(11, &|i| {
                vec![format!("Measurement {i}"), "120 mm[Hg]".into(), "3 Nov 2026".into()]
            })),
            section("Recent results", &["Test", "Date", "Outside the usual range"], rows(50, &|i| {
                vec![format!("Comprehensive metabolic panel {i}"), "3 Nov 2026".into(), if i % 7 == 0 { "Yes" } else { "No" }.into()]
            })),
            section("Visits", &["Date", "Type", "Seen by", "Diagnoses"], rows(60, &|i| {
                vec![format!("{} Jun {}", 1 + i % 28, 2000 + i % 26), "Follow-up".into(), "Dr. Maya Reyes".into(), "Essential hypertension; type 2 diabetes".into()]
            })),
            Section {
                heading: "Notes".into(),
                paragraphs: (0..8)
                    .map(|i| Paragraph {
                        heading: format!("Progress note {i} — Dr. Maya Reyes, 3 Nov 2026"),
                        body: "Patient seen for follow-up. Blood pressure improved on current dose. A1c down from last visit. Continue current plan; recheck labs in three months. Discussed diet and exercise; patient agrees to walk 30 minutes a day.".repeat(2),
                    })
                    .collect(),
                ..Section::default()
            },
        ],
    )
}

/// The same content as simple print HTML (what a browser-based renderer would be given).
fn html(p: &Printout) -> String {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    let mut out = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{} — {}</title><style>\
         @page {{ size: letter; margin: 2.4cm 2cm 2.6cm; }} body {{ font: 10.5pt serif; }} \
         h1, h2 {{ color: {}; }} table {{ border-collapse: collapse; width: 100%; }} \
         th, td {{ text-align: left; padding: 5px 4px; border-bottom: 1px solid #ccc; }}</style></head><body>\
         <p><strong>{}</strong></p><h1>{}</h1><p>Patient: {} · Date of birth: {} · Made: {}</p>",
        esc(&p.title),
        esc(&p.patient.name),
        p.clinic.colour,
        esc(&p.clinic.name),
        esc(&p.title),
        esc(&p.patient.name),
        esc(&p.patient.born),
        esc(&p.generated)
    );
    for s in &p.sections {
        out.push_str(&format!("<h2>{}</h2>", esc(&s.heading)));
        if !s.rows.is_empty() {
            out.push_str("<table><thead><tr>");
            for c in &s.columns {
                out.push_str(&format!("<th>{}</th>", esc(c)));
            }
            out.push_str("</tr></thead><tbody>");
            for r in &s.rows {
                out.push_str("<tr>");
                for c in r {
                    out.push_str(&format!("<td>{}</td>", esc(c)));
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
        }
        for para in &s.paragraphs {
            if !para.heading.is_empty() {
                out.push_str(&format!("<h3>{}</h3>", esc(&para.heading)));
            }
            for line in para.body.lines() {
                out.push_str(&format!("<p>{}</p>", esc(line)));
            }
        }
    }
    out.push_str(&format!(
        "<p><small>Content digest (SHA-256): {}</small></p></body></html>",
        p.digest
    ));
    out
}

/// `p` as printed for patient `i`: their name, birth date and digest on every page, and a
/// first cell of their own on every row (their medicines, vaccines and visits), so typst's
/// memo cache cannot replay an earlier patient's pages or tables; what stays warm is what
/// stays warm in a worker (fonts, the template's own evaluation, words every record shares).
fn for_patient(p: &Printout, i: usize) -> Printout {
    let mut q = p.clone();
    q.patient.name = format!("Ana Lima {i}");
    q.patient.born = format!("{} March {}", 1 + i % 28, 1940 + i % 80);
    for s in &mut q.sections {
        for row in &mut s.rows {
            if let Some(first) = row.first_mut() {
                first.push_str(&format!(" ({i})"));
            }
        }
    }
    q.digest = printout::digest(&q);
    q
}

/// Renders `p` n times, each for a different patient (`for_patient`).
async fn time_typst(
    renderer: &Renderer,
    template: &str,
    p: &Printout,
    n: usize,
) -> (Vec<Duration>, usize, usize) {
    let now = SystemClock.now();
    let data = |i: usize| serde_json::to_vec(&for_patient(p, i)).unwrap();
    let mut pages = 0;
    let mut bytes = 0;
    for i in 0..5 {
        renderer
            .render(template, data(1_000_000 + i), None, now)
            .await
            .unwrap();
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let input = data(i);
        let start = Instant::now();
        let pdf = renderer.render(template, input, None, now).await.unwrap();
        times.push(start.elapsed());
        pages = pdf.pages;
        bytes = pdf.bytes.len();
    }
    times.sort();
    // BENCH_SAVE_DIR keeps one of each, to look at.
    if let Ok(dir) = std::env::var("BENCH_SAVE_DIR") {
        let pdf = renderer.render(template, data(0), None, now).await.unwrap();
        let name = p.title.to_lowercase().replace(' ', "-");
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}.pdf")),
            pdf.bytes,
        )
        .unwrap();
    }
    (times, pages, bytes)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("PORTAL_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let n: usize = env_or("BENCH_RENDERS", 100);
    let total: usize = env_or("BENCH_DOCUMENTS", 300);
    let renderer = Renderer::new(1, Duration::from_secs(60)).expect("renderer");
    // BENCH_TEMPLATE: another template file to time (to try a change without a rebuild);
    // BENCH_PARTS: which of typst, chromium, e2e to run (default all three).
    let template = match std::env::var("BENCH_TEMPLATE") {
        Ok(path) => std::fs::read_to_string(path).expect("BENCH_TEMPLATE"),
        Err(_) => TEMPLATE.to_owned(),
    };
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "typst,chromium,e2e".into());

    println!("== typst, {n} renders each (after 5 warm-up), one at a time");
    let docs = [
        ("visit_summary", visit_summary()),
        ("record_summary", record_summary()),
    ];
    let mut typst_medians = HashMap::new();
    for (name, p) in &docs {
        let (times, pages, bytes) = time_typst(&renderer, &template, p, n).await;
        let med = percentile(&times, 0.5);
        typst_medians.insert(*name, med);
        println!(
            "{name}: {pages} page(s), {} KB; median {:.1} ms, p95 {:.1} ms",
            bytes / 1024,
            ms(med),
            ms(percentile(&times, 0.95))
        );
    }

    if !parts.contains("chromium") {
        return end_to_end(total, &parts).await;
    }
    println!("== headless Chromium, the same content as HTML → PDF, {n} each (after 5 warm-up)");
    let dir = std::env::temp_dir().join(format!(
        "portal-bench-docs-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, p) in &docs {
        std::fs::write(dir.join(format!("{name}.html")), html(p)).unwrap();
    }
    let out = std::process::Command::new("node")
        .arg("bench_chromium.mjs")
        .arg(&dir)
        .arg(n.to_string())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/browser"))
        .output()
        .expect("node");
    std::fs::remove_dir_all(&dir).ok();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "bench_chromium.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    for (name, _) in &docs {
        let r = &report[name];
        let med = r["median_ms"].as_f64().unwrap();
        let cold = r["cold_median_ms"].as_f64().unwrap();
        println!(
            "{name}: {} page(s); warm browser median {med:.1} ms, p95 {:.1} ms (typst {:.1}× faster); \
             a browser per document (chromium --print-to-pdf) median {cold:.0} ms (typst {:.0}× faster)",
            r["pages"],
            r["p95_ms"].as_f64().unwrap(),
            med / ms(typst_medians[name]),
            cold / ms(typst_medians[name])
        );
    }

    end_to_end(total, &parts).await;
}

/// Documents per second with one worker process.
async fn end_to_end(total: usize, parts: &str) {
    if !parts.contains("e2e") {
        return;
    }
    println!("== end to end: {total} documents, one worker process");
    let db = TestDb::create_with(HashMap::from([(
        "PORTAL_JOB_CONCURRENCY",
        env_or("BENCH_CONCURRENCY", 8usize).to_string(),
    )]))
    .await;
    let tenant = db.create_tenant("paperwork").await;
    let tenant_db = db.tenant_db().await;
    let patients = total.div_ceil(3);
    // Patients with a small record each, and accounts to have asked.
    let mut tx = tenant_db.begin(&tenant).await.unwrap();
    let mut jobs = Vec::new();
    let now = SystemClock.now();
    for i in 0..patients {
        let pid = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO patients (id, given_name, family_name, date_of_birth, created_at) VALUES ($1, 'Pat', $2, '1984-03-27', now())")
            .bind(pid).bind(format!("Bench{i}")).execute(tx.conn()).await.unwrap();
        let uid = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO users (id, email, display_name, role, patient_id, status, created_at) VALUES ($1, $2, 'Pat', 'patient', $3, 'invited', now())")
            .bind(uid).bind(format!("p{i}@bench.example")).bind(pid).execute(tx.conn()).await.unwrap();
        for v in 0..6 {
            sqlx::query("INSERT INTO immunizations (id, patient_id, vaccine, given_on, updated_at, created_at) VALUES ($1, $2, $3, '2020-01-01'::date + $4, now(), now())")
                .bind(uuid::Uuid::now_v7()).bind(pid).bind(format!("Vaccine {v}")).bind(v * 30).execute(tx.conn()).await.unwrap();
            sqlx::query("INSERT INTO medications (id, patient_id, code_system, name, status, updated_at, created_at) VALUES ($1, $2, 'text', $3, 'active', now(), now())")
                .bind(uuid::Uuid::now_v7()).bind(pid).bind(format!("Medicine {v} 10 mg")).execute(tx.conn()).await.unwrap();
        }
        for kind in ["immunization_record", "medication_list", "record_summary"]
            .iter()
            .take(total - i * 3)
        {
            let id = DocumentId::new();
            sqlx::query("INSERT INTO documents (id, patient_id, origin, kind, status, requested_by, created_at) VALUES ($1, $2, 'generated', $3, 'queued', $4, $5)")
                .bind(id.as_uuid()).bind(pid).bind(*kind).bind(uid).bind(now).execute(tx.conn()).await.unwrap();
            jobs.push((Job::DocumentRender { document_id: id }, None));
        }
    }
    tx.commit().await.unwrap();
    let deps = portal::work::deps(&db.config, Arc::new(SystemClock), None)
        .await
        .unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(portal_workers::run(deps, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let start = Instant::now();
    let mut tx = tenant_db.begin(&tenant).await.unwrap();
    portal_domain::jobs::enqueue_many(&mut tx, &jobs)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let schema = tenant.schema_name().to_owned();
    loop {
        let (ready, failed): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FILTER (WHERE status = 'ready'), count(*) FILTER (WHERE status = 'failed') FROM {schema}.documents"
        )))
        .fetch_one(&db.admin)
        .await
        .unwrap();
        assert_eq!(failed, 0, "a document failed");
        if ready as usize == jobs.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    println!(
        "{} documents ready in {:.2} s: {:.1} documents/s",
        jobs.len(),
        took.as_secs_f64(),
        jobs.len() as f64 / took.as_secs_f64()
    );
    let _ = stop_tx.send(true);
    let _ = worker.await;
}
