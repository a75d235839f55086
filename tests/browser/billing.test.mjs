// Bills (issue 13, first part), on a laptop and a phone: billing staff start on their work
// queue, find a patient, draft a statement (a refused line first, with the error summary and
// the field's own message), issue it after a check of what it charges, and take part of it in
// cash at the desk; the patient finds it under Bills with what is still due, and opens it.
// Every page passes axe and the layout checks. Runs on the demo clinic seeded by `portal demo`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  SCREENS, checkPage, launch, localDate, navigate, screenshot, signIn, signOut, site,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const ZONE = 'America/New_York';

for (const screen of SCREENS) {
  test(`Billing staff issue a statement and take part of it at the desk; the patient sees what is left (${screen.width} px)`, async () => {
    const ctx = await browser.newContext(screen.options);
    const page = await signIn(ctx, 'sunrise', 'billing@sunrise.example');
    assert.equal(page.url(), `${site('sunrise')}/billing`);
    await screenshot(page, `billing-queue-${screen.name}`);

    await navigate(page, 'Patients');
    await page.getByLabel('Find a patient').fill('Okafor');
    await page.getByTestId('search-patients').click();
    await page.getByTestId('patient-link').filter({ hasText: 'Okafor, Ben' }).click();
    await page.getByTestId('patient-billing').click();
    await page.waitForLoadState();
    await checkPage(page, 'a billing account');
    await page.getByTestId('start-statement').click();
    await page.waitForLoadState();
    assert.match(page.url(), /\/billing\/statements\/stm_[0-9a-f]{32}$/);
    await checkPage(page, 'a new draft');

    // A line with problems: each is listed at the top and shown at its field.
    const today = localDate(Date.now() - 86400000, ZONE);
    await page.getByLabel('Date of service').fill(today);
    await page.getByLabel('Service', { exact: true }).fill('Office visit, established patient');
    await page.getByLabel('CPT or HCPCS code (optional)').fill('99-213');
    await page.getByLabel('Charge').fill('180.001');
    await page.getByTestId('add-line').click();
    await page.waitForLoadState();
    assert.match(await page.title(), /^Error: /);
    assert.equal(await page.getByTestId('form-error').count(), 2);
    await checkPage(page, 'a refused line');
    await page.getByLabel('CPT or HCPCS code (optional)').fill('99213');
    await page.getByLabel('Charge').fill('180.00');
    await page.getByLabel('Insurance paid (optional)').fill('120');
    await page.getByLabel('Adjustment (optional)').fill('20.50');
    await page.getByTestId('add-line').click();
    await page.waitForLoadState();
    assert.equal(await page.getByTestId('line').count(), 1);
    await checkPage(page, 'a draft with a line');
    await screenshot(page, `billing-draft-${screen.name}`);

    // Issuing says what it will do first.
    await page.getByTestId('issue').click();
    await page.waitForLoadState();
    assert.match(await page.getByTestId('confirm-question').textContent(), /to Ben Okafor for \$39\.50, due/);
    await checkPage(page, 'the check before issuing');
    await page.getByTestId('confirm-action').click();
    await page.waitForLoadState();
    assert.equal(await page.getByTestId('statement-status').textContent(), 'Due');
    const heading = await page.getByTestId('statement-heading').textContent();
    const number = heading.match(/Statement (\d+)/)[1];

    // Part of it in cash at the desk.
    await page.getByLabel('Amount').fill('15');
    await page.getByLabel('Cash').check();
    await page.getByTestId('record-payment').click();
    await page.waitForLoadState();
    assert.equal(await page.getByTestId('statement-status').textContent(), 'Part paid');
    assert.equal(await page.getByTestId('still-due').textContent(), '$24.50');
    await checkPage(page, 'a part-paid statement');
    await screenshot(page, `billing-statement-${screen.name}`);
    await navigate(page, 'Billing');
    await page.getByRole('link', { name: `Statement ${number}` }).waitFor();
    await checkPage(page, 'the work queue with a statement owed');
    // The day/month summary counts the desk payment; its chart has a table beside it.
    await page.getByTestId('summary-link').click();
    await page.waitForLoadState();
    assert.notEqual(await page.getByTestId('total-received').textContent(), '$0.00');
    assert.ok(await page.getByTestId('summary-row').count() >= 1);
    assert.equal(await page.locator('[data-bar="billed"]').count(), 30);
    await checkPage(page, 'the billing summary by day');
    await screenshot(page, `billing-summary-${screen.name}`);
    await page.getByTestId('by-month').click();
    await page.waitForLoadState();
    assert.equal(await page.locator('[data-bar="billed"]').count(), 12);
    await checkPage(page, 'the billing summary by month');
    await navigate(page, 'Billing');
    await page.getByTestId('payments-link').click();
    await page.waitForLoadState();
    assert.ok(await page.getByTestId('payment-row').count() >= 1);
    await checkPage(page, 'payments');
    await navigate(page, 'Billing');
    await page.getByTestId('disputes-link').click();
    await page.waitForLoadState();
    await checkPage(page, 'disputes');
    await signOut(page);

    // The patient finds it under Bills.
    const patient = await signIn(ctx, 'sunrise', 'ben.okafor@sunrise.example');
    await navigate(patient, 'Bills');
    await checkPage(patient, 'the patient\'s bills');
    await screenshot(patient, `bills-${screen.name}`);
    await patient.getByRole('link', { name: `Statement ${number}` }).click();
    await patient.waitForLoadState();
    assert.equal(await patient.getByTestId('still-due').textContent(), '$24.50');
    assert.match(await patient.getByTestId('lines').textContent(), /Office visit, established patient/);
    await checkPage(patient, 'a statement, as the patient sees it');
    await screenshot(patient, `bill-${screen.name}`);
    // Their insurance: a refused form says why, then a saved one shows.
    await navigate(patient, 'Bills');
    await patient.getByTestId('insurance-link').click();
    await patient.waitForLoadState();
    await checkPage(patient, 'the patient\'s insurance');
    // The first screen adds it; the next changes what the first added.
    const add = patient.getByTestId('add-primary');
    await (await add.count() > 0 ? add : patient.getByTestId('change-primary')).click();
    await patient.waitForLoadState();
    await checkPage(patient, 'the insurance form');
    await patient.getByLabel('Insurance company').fill('');
    await patient.getByTestId('save-insurance').click();
    await patient.waitForLoadState();
    assert.match(await patient.locator('.error-summary').textContent(), /Enter the insurance company/);
    await checkPage(patient, 'insurance refused');
    await patient.getByLabel('Insurance company').fill('Aetna');
    await patient.getByLabel('Member ID').fill(`W${screen.width}77`);
    await patient.getByLabel('Name of the insured person').fill('Ben Okafor');
    await patient.getByTestId('save-insurance').click();
    await patient.waitForLoadState();
    assert.match(await patient.getByTestId('coverage-primary').textContent(), /Aetna/);
    await checkPage(patient, 'insurance saved');
    await screenshot(patient, `insurance-${screen.name}`);
    await ctx.close();
  });
}
