//! What the benchmarks share: running wrk and reading its report.

use std::process::Command;

/// What one wrk run measured.
pub struct Wrk {
    pub rps: f64,
    pub p99_ms: f64,
}

fn parse_ms(v: &str) -> f64 {
    let v = v.trim();
    if let Some(x) = v.strip_suffix("us") {
        x.parse::<f64>().unwrap_or(f64::NAN) / 1000.0
    } else if let Some(x) = v.strip_suffix("ms") {
        x.parse().unwrap_or(f64::NAN)
    } else if let Some(x) = v.strip_suffix('s') {
        x.parse::<f64>().unwrap_or(f64::NAN) * 1000.0
    } else {
        f64::NAN
    }
}

/// Runs wrk (`-t2`, `connections`, `seconds`, `--latency`, an optional Lua script, the
/// script's settings in `env`), prints its report and reads requests/s and p99 from it;
/// error responses fail the benchmark.
pub fn wrk(
    url: &str,
    connections: u32,
    seconds: u32,
    env: &[(&str, String)],
    script: Option<&str>,
) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        cmd.args(["-s", s]);
    }
    cmd.arg(url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert!(
        !text.contains("Non-2xx"),
        "the benchmark saw error responses"
    );
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Requests/sec");
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(parse_ms)
        .unwrap_or(f64::NAN);
    Wrk { rps, p99_ms }
}
