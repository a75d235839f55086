// First browser journey: each clinic's site shows its own name and colours; an unknown clinic
// address shows a 404. Runs in Debian's Chromium (never a downloaded browser) against the real
// server started by infra/test, which passes its address in PORTAL_TEST_PORT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { checkA11y } from './helpers.mjs';

const port = process.env.PORTAL_TEST_PORT;
const base = process.env.PORTAL_TEST_BASE_DOMAIN ?? 'localhost';
const url = (slug) => `http://${slug}.${base}:${port}/`;
let browser;

before(async () => {
  assert.ok(port, 'PORTAL_TEST_PORT must name the running server\'s port');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => { await browser?.close(); });

async function headerColour(page) {
  return page.locator('[data-testid="clinic-header"]').evaluate((el) => getComputedStyle(el).backgroundColor);
}

test('Sunrise and Harbor each show their own name and colours', async () => {
  const page = await browser.newPage();
  const cspViolations = [];
  page.on('console', (msg) => { if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text()); });

  const sunrise = await page.goto(url('sunrise'));
  await checkA11y(page, 'Sunrise home');
  assert.equal(sunrise.status(), 200);
  assert.equal(await page.locator('[data-testid="clinic-name"]').textContent(), 'Sunrise Family Medicine');
  assert.match(await page.title(), /Sunrise Family Medicine/);
  assert.equal(await headerColour(page), 'rgb(154, 52, 18)'); // #9a3412
  const logo = page.locator('img.brand-logo');
  assert.ok(await logo.evaluate((img) => img.complete && img.naturalWidth > 0), 'logo should load');

  const harbor = await page.goto(url('harbor'));
  await checkA11y(page, 'Harbor home');
  assert.equal(harbor.status(), 200);
  assert.equal(await page.locator('[data-testid="clinic-name"]').textContent(), 'Harbor Pediatrics');
  assert.equal(await headerColour(page), 'rgb(30, 58, 138)'); // #1e3a8a
  assert.equal(await page.getByText('Sunrise Family Medicine').count(), 0);

  assert.deepEqual(cspViolations, [], 'the page must not trip its own Content-Security-Policy');
  await page.close();
});

test('An unknown clinic address shows 404', async () => {
  const page = await browser.newPage();
  const resp = await page.goto(url('no-such-clinic'));
  await checkA11y(page, 'unknown clinic');
  assert.equal(resp.status(), 404);
  assert.equal(await page.locator('h1').textContent(), 'Page not found');
  await page.close();
});

test('The platform site leads to clinic sign-up, and the layout fits a phone', async () => {
  const page = await browser.newPage({ viewport: { width: 375, height: 740 } });
  await page.goto(`http://${base}:${port}/`);
  await page.getByRole('link', { name: 'Sign up your clinic' }).click();
  await page.waitForURL(/\/signup$/);
  await checkA11y(page, 'clinic sign-up form');
  assert.equal(await page.locator('h1').textContent(), 'Sign up your clinic');
  await page.goto(url('sunrise'));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone screen`);
  await page.close();
});
