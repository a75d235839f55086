// The Chromium side of the documents benchmark (tests/src/bin/bench_documents.rs): prints each
// HTML file in the given directory to PDF with Debian's headless Chromium two ways — a warm
// browser (`page.pdf()`, N times after 5 warm-up runs) and a browser started for each document
// (`chromium --headless --print-to-pdf`, as a service without a resident browser does, 10
// times) — and writes {name: {median_ms, p95_ms, pages, cold_median_ms}} as JSON. Not a test.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [dir, runs = '100'] = process.argv.slice(2);
const n = Number(runs);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
const report = {};
for (const file of readdirSync(dir).filter((f) => f.endsWith('.html')).sort()) {
  const html = readFileSync(join(dir, file), 'utf8');
  const print = async () => {
    await page.setContent(html);
    return page.pdf({
      format: 'Letter',
      displayHeaderFooter: true,
      footerTemplate: '<div style="font-size:8px;width:100%;text-align:right;padding-right:2cm">Page <span class="pageNumber"></span> of <span class="totalPages"></span></div>',
      headerTemplate: '<div></div>',
      margin: { top: '2.4cm', bottom: '2.6cm', left: '2cm', right: '2cm' },
      tagged: true,
    });
  };
  for (let i = 0; i < 5; i++) await print();
  const times = [];
  let pdf;
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    pdf = await print();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const at = (p) => times[Math.min(times.length - 1, Math.round((times.length - 1) * p))];
  const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? []).length;
  const cold = [];
  for (let i = 0; i < 10; i++) {
    const profile = mkdtempSync(join(tmpdir(), 'portal-bench-chromium-'));
    const start = process.hrtime.bigint();
    const run = spawnSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--user-data-dir=${profile}`, '--no-pdf-header-footer',
      `--print-to-pdf=${join(profile, 'out.pdf')}`, `file://${join(dir, file)}`,
    ]);
    cold.push(Number(process.hrtime.bigint() - start) / 1e6);
    rmSync(profile, { recursive: true, force: true });
    if (run.status !== 0) throw new Error(`chromium --print-to-pdf failed: ${run.stderr}`);
  }
  cold.sort((a, b) => a - b);
  report[file.replace(/\.html$/, '')] = {
    median_ms: at(0.5), p95_ms: at(0.95), pages, cold_median_ms: cold[Math.floor(cold.length / 2)],
  };
}
await browser.close();
process.stdout.write(JSON.stringify(report));
