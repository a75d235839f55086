// First browser journey: each clinic's site shows its own name and colours; an unknown clinic
// address shows a 404, a missing page within a clinic its branded one. Runs in Debian's
// Chromium (never a downloaded browser) against the real server started by infra/test, which
// passes its address in PORTAL_TEST_PORT; on a laptop and on a phone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SCREENS, base, checkPage, launch, newPage, port, site } from './helpers.mjs';

const url = (slug) => `${site(slug)}/`;
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function headerColour(page) {
  return page.locator('[data-testid="clinic-header"]').evaluate((el) => getComputedStyle(el).backgroundColor);
}

for (const screen of SCREENS) {
  test(`Sunrise and Harbor each show their own name and colours (${screen.width} px)`, async () => {
    const ctx = await browser.newContext(screen.options);
    const page = await newPage(ctx);

    const sunrise = await page.goto(url('sunrise'));
    await checkPage(page, 'Sunrise home');
    assert.equal(sunrise.status(), 200);
    assert.equal(await page.locator('[data-testid="clinic-name"]').textContent(), 'Sunrise Family Medicine');
    assert.match(await page.title(), /Sunrise Family Medicine/);
    assert.equal(await headerColour(page), 'rgb(154, 52, 18)'); // #9a3412
    const logo = page.locator('img.brand-logo');
    assert.ok(await logo.evaluate((img) => img.complete && img.naturalWidth > 0), 'logo should load');

    const harbor = await page.goto(url('harbor'));
    await checkPage(page, 'Harbor home');
    assert.equal(harbor.status(), 200);
    assert.equal(await page.locator('[data-testid="clinic-name"]').textContent(), 'Harbor Pediatrics');
    assert.equal(await headerColour(page), 'rgb(30, 58, 138)'); // #1e3a8a
    assert.equal(await page.getByText('Sunrise Family Medicine').count(), 0);

    assert.deepEqual(page.cspViolations, [], 'the page must not trip its own Content-Security-Policy');
    await ctx.close();
  });
}

for (const screen of SCREENS) {
  test(`An unknown clinic address shows 404, and a missing page the clinic's own 404 (${screen.width} px)`, async () => {
    const ctx = await browser.newContext(screen.options);
    const page = await newPage(ctx);
    const resp = await page.goto(url('no-such-clinic'));
    await checkPage(page, 'unknown clinic');
    assert.equal(resp.status(), 404);
    assert.equal(await page.locator('h1').textContent(), 'Page not found');
    // Within a clinic's site: branded, with a way home.
    const missing = await page.goto(`${site('sunrise')}/no/such/page`);
    assert.equal(missing.status(), 404);
    assert.equal(await page.getByTestId('error-heading').textContent(), 'Page not found');
    assert.equal(await page.getByTestId('clinic-name').textContent(), 'Sunrise Family Medicine');
    await checkPage(page, 'missing page');
    await page.getByRole('link', { name: 'Go to the home page' }).click();
    await page.waitForURL(url('sunrise'));
    assert.deepEqual(page.cspViolations, []);
    await ctx.close();
  });
}

test('The platform site leads to clinic sign-up, and the layout fits a phone', async () => {
  const page = await browser.newPage({ viewport: { width: 375, height: 740 } });
  await page.goto(`http://${base}:${port}/`);
  await checkPage(page, 'platform home');
  await page.getByRole('link', { name: 'Sign up your clinic' }).click();
  await page.waitForURL(/\/signup$/);
  await checkPage(page, 'clinic sign-up form');
  assert.equal(await page.locator('h1').textContent(), 'Sign up your clinic');
  await page.goto(url('sunrise'));
  await checkPage(page, 'Sunrise home on a small phone');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone screen`);
  await page.close();
});
