// Results (issue 11), on a laptop and a phone: a clinician enters two lab values for a patient
// (the second high) and comments on it; the patient gets a notice that says nothing about the
// result, signs in, sees the result flagged, opens it and its trend chart, reads the comment;
// their access report shows the clinician's view of their record. Every page passes axe and
// the layout checks. Runs on the demo clinic seeded by `portal demo`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  SCREENS, DESKTOP, checkPage, launch, newPage, platform, screenshot, signIn, site,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Each screen size uses its own patient, so the two runs never meet.
const patientFor = (screen) => (screen === DESKTOP
  ? { name: 'Okafor', email: 'ben.okafor@sunrise.example' }
  : { name: 'Nguyen', email: 'chloe.nguyen@sunrise.example' });

// "YYYY-MM-DDTHH:MM" some days ago, in the clinic's zone, for a datetime-local field.
function daysAgo(days) {
  const when = new Date(Date.now() - days * 86400000);
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: 'America/New_York', year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(when).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T08:00`;
}

async function enterGlucose(page, value, collected) {
  await page.getByLabel('Test', { exact: true }).fill('Glucose');
  await page.getByLabel('LOINC code').fill('2345-7');
  await page.getByLabel('Value', { exact: true }).fill(value);
  await page.getByLabel('Unit', { exact: true }).fill('mg/dL');
  await page.getByLabel('Normal range from (optional)').fill('70');
  await page.getByLabel('Normal range to (optional)').fill('99');
  await page.getByLabel('Sample collected (optional)').fill(collected);
  await page.getByLabel('Laboratory (optional)').fill('Sunrise Lab');
  await page.getByTestId('add-result').click();
  assert.match(await page.getByTestId('notice').textContent(), /Result added/);
}

for (const screen of SCREENS) {
  test(`A clinician enters a lab result; the patient is told, sees it flagged, its trend and the comment (${screen.width} px)`, async () => {
    const who = patientFor(screen);
    const docCtx = await browser.newContext(screen.options);
    const doc = await signIn(docCtx, 'sunrise', 'clinician@sunrise.example');
    await doc.goto(`${site('sunrise')}/admin/patients?q=${who.name}`);
    await doc.getByTestId('patient-link').first().click();
    await doc.getByTestId('patient-record').click();
    await checkPage(doc, 'a patient\'s record (clinician)');

    // A value that is not a number with no unit is refused on its field.
    await doc.getByLabel('Test', { exact: true }).fill('Glucose');
    await doc.getByLabel('LOINC code').fill('2345-7');
    await doc.getByLabel('Value', { exact: true }).fill('131');
    await doc.getByTestId('add-result').click();
    assert.match(await doc.locator('#result-unit-error').textContent(), /needs its unit/);
    await checkPage(doc, 'a lab result with a problem');

    await enterGlucose(doc, '92', daysAgo(180));
    await enterGlucose(doc, '131', daysAgo(1));
    await checkPage(doc, 'the record with two results');
    // The newest result, with its comment form.
    await doc.getByTestId('recent-result').first().getByRole('link').click();
    assert.equal(await doc.getByTestId('result-heading').textContent(), 'Glucose');
    await doc.getByLabel('Comment in plain language').fill('A little high. Let us recheck it fasting in three months.');
    await doc.getByTestId('save-comment').click();
    assert.match(await doc.getByTestId('result-comment').textContent(), /recheck it fasting/);
    await checkPage(doc, 'a result with the clinician\'s comment');
    await docCtx.close();

    // The notice arrives and says nothing about the result.
    const patientCtx = await browser.newContext(screen.options);
    const mailPage = await newPage(patientCtx);
    let notice;
    for (let i = 0; i < 100 && !notice; i++) {
      await mailPage.goto(`${platform}/dev/mailbox?to=${encodeURIComponent(who.email)}`);
      const found = mailPage.getByTestId('mail').filter({ hasText: 'A new result is ready' });
      if (await found.count() > 0) notice = (await found.first().textContent());
      else await mailPage.waitForTimeout(200);
    }
    assert.ok(notice, `no result notice reached ${who.email}`);
    assert.doesNotMatch(notice, /Glucose|131|mg\/dL|High/);
    await checkPage(mailPage, 'dev mailbox');

    // The patient signs in, sees it new and flagged, opens it and its trend.
    const patient = await signIn(patientCtx, 'sunrise', who.email);
    await patient.goto(`${site('sunrise')}/results`);
    await checkPage(patient, 'the patient\'s results');
    const row = patient.getByTestId('result-row').first();
    assert.equal(await row.getByTestId('result-flagged').count(), 1, 'flagged');
    assert.equal(await row.getByTestId('result-new').count(), 1, 'new');
    await row.getByTestId('result-link').click();
    assert.match(await patient.getByTestId('value-flag').textContent(), /High/);
    assert.match(await patient.getByTestId('result-comment').textContent(), /recheck it fasting in three months/);
    assert.match(await patient.getByTestId('result-comment').textContent(), /Dr\. Casey Clinician/);
    await checkPage(patient, 'a result, flagged, with the comment');
    await screenshot(patient, 'result-detail');
    await patient.getByTestId('trend-link').first().click();
    assert.equal(await patient.getByTestId('trend-chart').count(), 1);
    assert.ok(await patient.getByTestId('normal-band').count() === 1, 'the normal range is shaded');
    assert.ok(await patient.getByTestId('trend-table').locator('tbody tr').count() >= 2);
    await checkPage(patient, 'a trend chart');
    await screenshot(patient, 'result-trend');

    // The health summary lists the result; the access report shows the clinician's view.
    await patient.goto(`${site('sunrise')}/record`);
    assert.match(await patient.getByTestId('recent-results').textContent(), /Glucose/);
    await checkPage(patient, 'the health summary');
    await screenshot(patient, 'health-summary');
    await patient.goto(`${site('sunrise')}/results/preferences`);
    await checkPage(patient, 'when results are shown');
    await patient.goto(`${site('sunrise')}/account/access`);
    const log = await patient.getByTestId('access-log').textContent();
    assert.match(log, /Dr\. Casey Clinician/);
    assert.match(log, /Viewed the record/);
    await checkPage(patient, 'the access report after the clinician\'s view');
    await patientCtx.close();
  });
}
