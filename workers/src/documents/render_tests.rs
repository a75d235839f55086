//! The renderer on its own: the real template prints a real PDF (tagged, titled, with the
//! patient and the data on it, read back with poppler's tools), and the world is closed —
//! neither a template nor the data can make it read a file or a URL.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use super::*;

fn renderer(timeout: Duration) -> Renderer {
    Renderer::new(2, timeout).unwrap()
}

fn created() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn data(name: &str, vaccine: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "title": "Immunization record",
        "clinic": { "name": "Sunrise Family Medicine", "colour": "#0b6e4f" },
        "patient": { "name": name, "born": "27 March 1984" },
        "generated": "Mon 30 Nov 2026, 4:20 PM (America/New_York)",
        "digest": "ab".repeat(32),
        "sections": [{
            "heading": "Vaccines",
            "columns": ["Vaccine", "Date given"],
            "rows": [[vaccine, "2 Oct 2025"], ["Tdap", "1 May 2020"]],
            "paragraphs": [],
            "empty": "No vaccines recorded."
        }, {
            "heading": "Allergies", "columns": [], "rows": [], "paragraphs": [],
            "empty": "No known allergies recorded."
        }]
    }))
    .unwrap()
}

/// Runs a poppler tool on the PDF and returns what it printed.
fn poppler(tool: &str, pdf: &[u8]) -> String {
    let mut file = tempfile_in_target();
    file.1.write_all(pdf).unwrap();
    let out = Command::new(tool)
        .arg(&file.0)
        .arg(if tool == "pdftotext" {
            "-"
        } else {
            "-isodates"
        })
        .output()
        .unwrap_or_else(|e| panic!("{tool} must be installed (poppler-utils): {e}"));
    std::fs::remove_file(&file.0).ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tempfile_in_target() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!("portal-render-{}.pdf", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

#[tokio::test]
async fn the_template_prints_a_tagged_titled_pdf_with_the_patient_and_their_data() {
    let pdf = renderer(Duration::from_secs(60))
        .render(
            crate::documents::TEMPLATE,
            data("Ana Lima", "Influenza, seasonal"),
            None,
            created(),
        )
        .await
        .unwrap();
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    assert_eq!(pdf.pages, 1);
    let text = poppler("pdftotext", &pdf.bytes);
    for expected in [
        "Ana Lima",
        "27 March 1984",
        "Influenza, seasonal",
        "Tdap",
        "No known allergies recorded.",
        "Sunrise Family Medicine",
        "Page 1 of 1",
        &"ab".repeat(32),
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let info = poppler("pdfinfo", &pdf.bytes);
    assert!(info.contains("Tagged:          yes"), "{info}");
    assert!(
        info.contains("Title:           Immunization record — Ana Lima"),
        "{info}"
    );
}

#[tokio::test]
async fn a_template_that_names_a_file_or_url_fails_without_reading_it() {
    let r = renderer(Duration::from_secs(60));
    for template in [
        r#"#read("/etc/passwd")"#,
        r#"#read("../../../../etc/hostname")"#,
        r#"#image("/etc/ssl/certs/ca-certificates.crt")"#,
        r#"#image("https://example.com/tracker.png")"#,
        r#"#import "@preview/cetz:0.3.0": canvas"#,
        r#"#include "/secrets.typ""#,
    ] {
        let out = r.render(template, b"{}".to_vec(), None, created()).await;
        assert!(
            matches!(out, Err(RenderError::Compile(_))),
            "{template} should fail, got {out:?}"
        );
    }
}

#[tokio::test]
async fn data_that_names_a_path_or_markup_is_printed_as_text_never_followed() {
    let sneaky = r#"#read("/etc/passwd") <img src=/etc/hostname> /etc/passwd"#;
    let pdf = renderer(Duration::from_secs(60))
        .render(
            crate::documents::TEMPLATE,
            data(sneaky, "#image(\"/etc/hostname\")"),
            None,
            created(),
        )
        .await
        .unwrap();
    let text = poppler("pdftotext", &pdf.bytes);
    assert!(text.contains("#read(\"/etc/passwd\")"), "{text}");
    assert!(text.contains("#image(\"/etc/hostname\")"), "{text}");
    assert!(!text.contains("root:x:0:0"), "a file was read:\n{text}");
}

#[tokio::test]
async fn a_render_that_runs_too_long_is_abandoned_and_reported() {
    // About a hundred million loop turns: far longer than the bound, without using memory.
    let endless = "#for i in range(10000) { for j in range(10000) { } }";
    let out = renderer(Duration::from_millis(200))
        .render(endless, b"{}".to_vec(), None, created())
        .await;
    assert!(matches!(out, Err(RenderError::Timeout(_))), "{out:?}");
}

/// The nice value and scheduling policy of each render thread of this process, read from
/// `/proc` (fields 19 and 41 of a task's `stat`, counted after its name).
fn render_threads() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with(THREAD_NAME) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue; // it ended meanwhile
        };
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        found.push((fields[19 - 3].to_owned(), fields[41 - 3].to_owned()));
    }
    found
}

#[tokio::test]
async fn renders_run_on_threads_that_give_way_to_everything_else() {
    let r = renderer(Duration::from_secs(60));
    r.render(
        crate::documents::TEMPLATE,
        data("Ana Lima", "Influenza, seasonal"),
        None,
        created(),
    )
    .await
    .unwrap();
    // Other tests of this process start renderers too; a thread just started may not have
    // lowered itself yet, so look again for a moment before concluding.
    let mut threads = render_threads();
    for _ in 0..50 {
        if threads.len() >= 2 && threads.iter().all(|t| t == &("19".into(), "3".into())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        threads = render_threads();
    }
    assert!(threads.len() >= 2, "{threads:?}");
    for (nice, policy) in &threads {
        assert_eq!(nice, "19", "the lowest priority");
        assert_eq!(policy, "3", "SCHED_BATCH");
    }
}
