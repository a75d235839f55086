// Documents (issue 12), on a laptop and a phone: a patient asks for their immunization record,
// watches its page go to ready by itself, downloads it, and the PDF says who they are and which
// vaccines they had (pdftotext) and is tagged for screen readers (pdfinfo); they upload a photo
// of their insurance card (after a refused attempt) and a clinician finds it in the patient's
// documents and opens it. Every page passes axe and the layout checks. Runs on the demo clinic
// seeded by `portal demo` (Ana Lima's record has her vaccines).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SCREENS, DESKTOP, checkPage, launch, navigate, screenshot, signIn, site,
} from './helpers.mjs';

let browser;
let scratch;
before(async () => {
  browser = await launch();
  scratch = mkdtempSync(join(tmpdir(), 'portal-documents-'));
});
after(async () => {
  await browser?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// A 1 × 1 PNG: the "photo" of the card.
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
  '1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082', 'hex');

for (const screen of SCREENS) {
  test(`A patient gets their immunization record as a PDF and uploads their insurance card; a clinician sees it (${screen.width} px)`, async () => {
    const ctx = await browser.newContext({ ...screen.options, acceptDownloads: true });
    const page = await signIn(ctx, 'sunrise', 'ana.lima@sunrise.example');
    await navigate(page, 'Documents');
    await checkPage(page, 'the documents area');
    await screenshot(page, 'documents');

    // Ask for the record; its page follows it to ready without being reloaded.
    await page.getByTestId('request-immunization_record').click();
    await page.waitForLoadState();
    assert.match(page.url(), /\/documents\/doc_[0-9a-f]{32}$/);
    const first = await page.getByTestId('document-state').getAttribute('data-status');
    assert.ok(['queued', 'rendering', 'ready'].includes(first), first);
    if (first !== 'ready') await checkPage(page, 'a document being prepared');
    await page.evaluate(() => { window.stillTheSamePage = true; });
    await page.locator('[data-testid=document-state][data-status=ready]').waitFor({ timeout: 30000 });
    assert.equal(await page.evaluate(() => window.stillTheSamePage), true, 'the page was reloaded');
    await checkPage(page, 'a ready document');
    await screenshot(page, 'document-ready');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('document-download').click(),
    ]);
    assert.match(download.suggestedFilename(), /^immunization-record-\d{4}-\d{2}-\d{2}\.pdf$/);
    const file = join(scratch, `record-${screen.width}.pdf`);
    await download.saveAs(file);
    const text = execFileSync('pdftotext', [file, '-']).toString();
    assert.match(text, /Ana Lima/);
    assert.match(text, /Influenza, injectable, quadrivalent/);
    assert.match(text, /Tdap/);
    const info = execFileSync('pdfinfo', [file]).toString();
    assert.match(info, /^Tagged:\s+yes$/m);
    assert.match(info, /^Title:\s+Immunization record — Ana Lima$/m);

    // Upload the insurance card: first with no file (a clear error), then the photo.
    await page.goto(`${site('sunrise')}/documents`);
    await page.getByTestId('upload-link').click();
    await page.waitForLoadState();
    await checkPage(page, 'the upload form');
    await page.getByTestId('upload-submit').click();
    await page.waitForLoadState();
    assert.match(await page.title(), /^Error: /);
    assert.match(await page.getByTestId('error-summary').textContent(), /Choose what kind of document this is/);
    assert.match(await page.getByTestId('file-error').textContent(), /Choose a file to upload/);
    await checkPage(page, 'the upload form with problems');
    const note = `Front of my card (${screen.name})`;
    await page.getByLabel('Insurance card').check();
    const photo = join(scratch, `card-${screen.width}.png`);
    writeFileSync(photo, PNG);
    await page.getByLabel('File').setInputFiles(photo);
    await page.getByLabel('Note for your care team (optional)').fill(note);
    await page.getByTestId('upload-submit').click();
    await page.waitForLoadState();
    assert.match(await page.getByTestId('notice').textContent(), /Your file was uploaded/);
    assert.match(await page.getByTestId('documents').textContent(), new RegExp(note.replace(/[()]/g, '\\$&')));
    await checkPage(page, 'the documents area after an upload');
    const uploadHref = await page.getByTestId('document-row').filter({ hasText: note })
      .getByTestId('document-link').getAttribute('href');
    await ctx.close();

    // The clinician finds it in the patient's documents.
    const docCtx = await browser.newContext({ ...screen.options, acceptDownloads: true });
    const doc = await signIn(docCtx, 'sunrise', 'clinician@sunrise.example');
    await doc.goto(`${site('sunrise')}/admin/patients?q=Lima`);
    await doc.getByTestId('patient-link').first().click();
    await doc.getByTestId('patient-documents').click();
    await doc.waitForLoadState();
    await checkPage(doc, 'a patient\'s documents (clinician)');
    const row = doc.getByTestId('document-row').filter({ hasText: note });
    await row.getByTestId('document-link').click();
    await doc.waitForLoadState();
    await checkPage(doc, 'an uploaded document (clinician)');
    const [card] = await Promise.all([
      doc.waitForEvent('download'),
      doc.getByTestId('document-download').click(),
    ]);
    const saved = join(scratch, `seen-${screen.width}.png`);
    await card.saveAs(saved);
    assert.deepEqual(readFileSync(saved), PNG);

    // The clinician writes a referral letter: first with nothing filled in, then properly.
    await doc.goBack();
    await doc.getByTestId('request-referral_letter').click();
    await doc.waitForLoadState();
    assert.match(await doc.title(), /^Error: /);
    assert.match(await doc.getByTestId('error-summary').textContent(), /Enter who the letter is to/);
    await checkPage(doc, 'a referral letter with problems');
    await doc.getByLabel('To', { exact: true }).fill('Dr. Jane Ortho, Lakeside Orthopedics');
    await doc.getByLabel('Reason for the referral').fill('assessment of right knee pain');
    await doc.getByTestId('request-referral_letter').click();
    await doc.locator('[data-testid=document-state][data-status=ready]').waitFor({ timeout: 30000 });
    await checkPage(doc, 'a referral letter (clinician)');
    await docCtx.close();

    // The patient removes their upload, after a page that asks first.
    const again = await browser.newContext(screen.options);
    const patient = await signIn(again, 'sunrise', 'ana.lima@sunrise.example');
    await patient.goto(`${site('sunrise')}${uploadHref}`);
    await patient.getByTestId('document-remove').click();
    await patient.waitForLoadState();
    await checkPage(patient, 'remove an upload?');
    await patient.getByTestId('confirm-action').click();
    await patient.waitForLoadState();
    assert.match(await patient.getByTestId('notice').textContent(), /removed/);
    assert.doesNotMatch(await patient.locator('main').textContent(), new RegExp(note.replace(/[()]/g, '\\$&')));
    await again.close();
  });
}

test('A clinic admin words the referral letter; a misspelt placeholder is refused', async () => {
  const ctx = await browser.newContext(DESKTOP.options);
  const admin = await signIn(ctx, 'sunrise', 'admin@sunrise.example');
  await admin.getByTestId('letters-link').click();
  await admin.waitForLoadState();
  await checkPage(admin, 'the referral letter wording');
  const field = admin.getByLabel('The letter');
  const words = await field.inputValue();
  await field.fill(`${words}\n{recipent}`);
  await admin.getByTestId('save-letter').click();
  await admin.waitForLoadState();
  assert.match(await admin.getByTestId('error-summary').textContent(), /\{recipent\} is not a placeholder we know/);
  await checkPage(admin, 'the referral letter wording with a problem');
  await admin.getByLabel('The letter').fill(words);
  await admin.getByTestId('save-letter').click();
  await admin.waitForLoadState();
  assert.match(await admin.getByTestId('notice').textContent(), /Saved/);
  await ctx.close();
});
