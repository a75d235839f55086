// Roles in the browser: billing staff work with patient details, never with the schedule or a
// visit's reason (demo clinic Sunrise, seeded by `portal demo`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { checkA11y } from './helpers.mjs';

const port = process.env.PORTAL_TEST_PORT;
const base = process.env.PORTAL_TEST_BASE_DOMAIN ?? 'localhost';
const site = (slug) => `http://${slug}.${base}:${port}`;
const demoPassword = process.env.PORTAL_DEMO_PASSWORD ?? 'demo passphrase for portal';
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

test('A billing user cannot open the schedule or a visit, and is told why', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${site('sunrise')}/login`);
  await page.getByLabel('Email').fill('billing@sunrise.example');
  await page.getByLabel('Password').fill(demoPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${site('sunrise')}/admin`);
  await checkA11y(page, 'billing console');
  // The navigation offers only what the role may use.
  assert.equal(await page.getByRole('link', { name: 'Schedule' }).count(), 0);

  const schedule = await page.goto(`${site('sunrise')}/staff/schedule`);
  assert.equal(schedule.status(), 403);
  assert.match(await page.locator('h1').textContent(), /not part of your role/);
  assert.match(await page.locator('main').textContent(), /Billing/);
  await checkA11y(page, 'not part of your role');

  // The API answers the same for the visit list and any visit.
  const statuses = await page.evaluate(async () => Promise.all(
    ['/api/v1/appointments', '/api/v1/appointments/apt_00000000000000000000000000']
      .map((p) => fetch(p, { credentials: 'same-origin' }).then((r) => r.status)),
  ));
  assert.deepEqual(statuses, [403, 403]);
  await ctx.close();
});
