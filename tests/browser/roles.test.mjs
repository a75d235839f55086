// Roles in the browser: billing staff work with patient details, never with the schedule or a
// visit's reason (demo clinic Sunrise, seeded by `portal demo`); on a laptop and on a phone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SCREENS, checkPage, launch, navigate, signIn, site } from './helpers.mjs';

let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

for (const screen of SCREENS) {
  test(`A billing user cannot open the schedule or a visit, and is told why (${screen.width} px)`, async () => {
    const ctx = await browser.newContext(screen.options);
    const page = await signIn(ctx, 'sunrise', 'billing@sunrise.example');
    // Billing starts on its work queue, and "Home" leads there too; patient search is a
    // tap away.
    assert.equal(page.url(), `${site('sunrise')}/billing`);
    await navigate(page, 'Home');
    await page.waitForURL(`${site('sunrise')}/billing`);
    await page.getByRole('heading', { name: 'Billing work queue' }).waitFor();
    await checkPage(page, 'billing start page');
    await navigate(page, 'Patients');
    await page.getByLabel('Find a patient').waitFor();
    // The navigation offers only what the role may use.
    assert.equal(await page.getByRole('link', { name: 'Schedule' }).count(), 0);

    const schedule = await page.goto(`${site('sunrise')}/staff/schedule`);
    assert.equal(schedule.status(), 403);
    assert.match(await page.locator('h1').textContent(), /not part of your role/);
    assert.match(await page.locator('main').textContent(), /Billing/);
    await checkPage(page, 'not part of your role');

    // The API answers the same for the visit list and any visit.
    const statuses = await page.evaluate(async () => Promise.all(
      ['/api/v1/appointments', '/api/v1/appointments/apt_00000000000000000000000000']
        .map((p) => fetch(p, { credentials: 'same-origin' }).then((r) => r.status)),
    ));
    assert.deepEqual(statuses, [403, 403]);
    assert.deepEqual(page.cspViolations, []);
    await ctx.close();
  });
}
