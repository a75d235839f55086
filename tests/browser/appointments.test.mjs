// Appointment journeys in Debian's Chromium against the real server and workers started by
// infra/test, on the demo clinic Sunrise (scheduling seeded by `portal demo`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { checkA11y } from './helpers.mjs';

const port = process.env.PORTAL_TEST_PORT;
const base = process.env.PORTAL_TEST_BASE_DOMAIN ?? 'localhost';
const site = (slug) => `http://${slug}.${base}:${port}`;
const demoPassword = process.env.PORTAL_DEMO_PASSWORD ?? 'demo passphrase for portal';
const mailDir = process.env.PORTAL_MAIL_DIR;
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

async function signIn(ctx, slug, email) {
  const page = await ctx.newPage();
  const csp = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });
  await page.goto(`${site(slug)}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(demoPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  await checkA11y(page, `${email}'s start page`);
  page.cspViolations = csp;
  return page;
}

// The appointment as the API tells it, fetched from the page with its own session.
async function apiAppointment(page, id) {
  return page.evaluate((apt) => fetch(`/api/v1/appointments/${apt}`, { credentials: 'same-origin' })
    .then((r) => r.json()), id);
}

function localDate(iso, timeZone) {
  return new Date(iso).toLocaleDateString('en-CA', { timeZone });
}

// The clinic's date `days` from now (YYYY-MM-DD): far enough ahead to stay outside the
// clinic's 24-hour cut-off for moving and cancelling online.
function daysAhead(days) {
  return localDate(new Date(Date.now() + days * 86400000).toISOString(), 'America/New_York');
}

// Emails written by the file transport (infra/test points PORTAL_MAIL_DIR at a temp dir).
async function emailsTo(to, subjectPart) {
  for (let i = 0; i < 100; i++) {
    const found = readdirSync(mailDir).filter((f) => f.endsWith('.eml'))
      .map((f) => readFileSync(join(mailDir, f), 'utf8'))
      .filter((raw) => raw.includes(`To: ${to}`) && raw.includes(subjectPart));
    if (found.length > 0) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`no email to ${to} with "${subjectPart}"`);
}

test('A patient books, gets a confirmation with a calendar file, moves and cancels; staff see each change live', async () => {
  const patientCtx = await browser.newContext({ acceptDownloads: true });
  const staffCtx = await browser.newContext();
  const patient = await signIn(patientCtx, 'sunrise', 'ana.lima@sunrise.example');

  // Book: visit type → first open time → confirm with a reason.
  await patient.getByRole('link', { name: 'Appointments' }).click();
  await checkA11y(patient, 'appointments');
  await patient.getByTestId('book-link').click();
  await checkA11y(patient, 'choose a visit type');
  await patient.getByRole('link', { name: 'Check-up' }).click();
  assert.match(await patient.locator('main').textContent(), /Times are in the clinic's time zone, America\/New_York/);
  await patient.getByLabel('From').fill(daysAhead(2));
  await patient.getByRole('button', { name: 'Show times' }).click();
  await checkA11y(patient, 'open times');
  await patient.getByTestId('slot').first().click();
  await checkA11y(patient, 'confirm the booking');
  const when = await patient.getByTestId('confirm-when').textContent();
  await patient.getByLabel(/What would you like to be seen for/).fill('a rash that will not go away');
  await patient.getByTestId('confirm-book').click();
  assert.match(await patient.getByTestId('notice').textContent(), /Your visit is booked/);
  await checkA11y(patient, 'the booked visit');
  assert.equal((await patient.getByTestId('appointment-when').textContent()).trim(), when.trim());
  const id = new URL(patient.url()).pathname.split('/').pop();
  assert.match(id, /^apt_/);
  const appt = await apiAppointment(patient, id);
  const day = localDate(appt.starts_at, 'America/New_York');

  // The confirmation email carries the calendar file and not the reason.
  const [confirmation] = await emailsTo('ana.lima@sunrise.example', 'is booked');
  assert.match(confirmation, /text\/calendar/);
  assert.match(confirmation, /visit\.ics/);
  assert.doesNotMatch(confirmation, /rash/);

  // The same calendar file downloads from the visit's page.
  const [download] = await Promise.all([
    patient.waitForEvent('download'),
    patient.getByTestId('ics-link').click(),
  ]);
  const ics = readFileSync(await download.path(), 'utf8');
  assert.match(ics, /BEGIN:VCALENDAR/);
  assert.match(ics, new RegExp(`UID:${id}@sunrise`));

  // Staff have the day open; the booking is there.
  const staff = await signIn(staffCtx, 'sunrise', 'admin@sunrise.example');
  await staff.goto(`${site('sunrise')}/staff/schedule?date=${day}&view=week`);
  const row = staff.locator(`[data-appointment="${id}"]`);
  await row.waitFor();
  await checkA11y(staff, 'staff schedule, week');
  assert.match(await row.textContent(), /Ana Lima/);
  assert.match(await row.textContent(), /a rash that will not go away/);
  // Where the row sits: its day's heading and its time. (The week view groups rows by day, so
  // a move to the same time on another day of the week changes only the heading.)
  const placeOf = (apt) => {
    const r = document.querySelector(`[data-appointment="${apt}"]`);
    return r && `${r.closest('section').querySelector('h2').textContent} ${r.querySelector('td').textContent}`;
  };
  const before = await staff.evaluate(placeOf, id);

  // The patient moves the visit; the open schedule follows without a reload.
  await patient.getByTestId('reschedule-link').click();
  await checkA11y(patient, 'move the visit');
  await patient.getByLabel('From').fill(daysAhead(4));
  await patient.getByRole('button', { name: 'Show times' }).click();
  await patient.getByTestId('slot').first().click();
  assert.match(await patient.getByTestId('notice').textContent(), /Your visit has moved/);
  const moved = await apiAppointment(patient, id);
  assert.equal(moved.version, 2);
  await staff.waitForFunction(
    ([apt, old]) => {
      const r = document.querySelector(`[data-appointment="${apt}"]`);
      return !r || `${r.closest('section').querySelector('h2').textContent} ${r.querySelector('td').textContent}` !== old;
    },
    [id, before],
    { timeout: 15000 },
  );
  await emailsTo('ana.lima@sunrise.example', 'has moved');

  // Staff open the new day; the patient cancels; the schedule shows it cancelled, again live.
  await staff.goto(`${site('sunrise')}/staff/schedule?date=${localDate(moved.starts_at, 'America/New_York')}&view=week`);
  await staff.locator(`[data-appointment="${id}"]`).waitFor();
  await patient.getByTestId('cancel-visit').click();
  assert.equal(await patient.getByTestId('appointment-status').textContent(), 'Cancelled');
  await staff.waitForFunction(
    (apt) => document.querySelector(`[data-appointment="${apt}"] [data-testid="row-status"]`)
      ?.textContent.trim() === 'Cancelled',
    id,
    { timeout: 15000 },
  );
  await emailsTo('ana.lima@sunrise.example', 'is cancelled');

  assert.deepEqual(patient.cspViolations, []);
  assert.deepEqual(staff.cspViolations, []);
  await patientCtx.close();
  await staffCtx.close();
});

test('Staff book for a patient and the open schedule shows it live; check-in follows', async () => {
  const staffCtx = await browser.newContext();
  const deskCtx = await browser.newContext();
  const staff = await signIn(staffCtx, 'sunrise', 'admin@sunrise.example');
  const desk = await signIn(deskCtx, 'sunrise', 'clinician@sunrise.example');
  await staff.goto(`${site('sunrise')}/staff/book`);
  await checkA11y(staff, 'staff booking');
  const ben = await staff.locator('#patient option', { hasText: 'Okafor, Ben' }).getAttribute('value');
  const physical = await staff.locator('#visit_type option', { hasText: 'Annual physical' }).getAttribute('value');
  await staff.locator('#patient').selectOption(ben);
  await staff.locator('#visit_type').selectOption(physical);
  await staff.getByRole('button', { name: 'Show times' }).click();
  const start = await staff.getByTestId('slot').first().locator('xpath=..').locator('input[name="start"]').inputValue();
  const day = localDate(start, 'America/New_York');
  await desk.goto(`${site('sunrise')}/staff/schedule?date=${day}`);
  const rowsBefore = await desk.getByTestId('schedule-row').count();
  await staff.getByTestId('slot').first().click();
  assert.match(await staff.getByTestId('notice').textContent(), /Visit booked/);
  // The other member of staff sees it arrive.
  await desk.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="schedule-row"]').length > n,
    rowsBefore,
    { timeout: 15000 },
  );
  assert.match(await desk.locator('#schedule').textContent(), /Ben Okafor/);
  await staffCtx.close();
  await deskCtx.close();
});

test('A video visit shows its join link', async () => {
  const ctx = await browser.newContext();
  const patient = await signIn(ctx, 'sunrise', 'ben.okafor@sunrise.example');
  await patient.goto(`${site('sunrise')}/appointments/new`);
  await patient.getByRole('link', { name: 'Video visit' }).click();
  await patient.getByTestId('slot').first().click();
  await patient.getByTestId('confirm-book').click();
  assert.match(await patient.getByTestId('notice').textContent(), /Your visit is booked/);
  const join = patient.getByTestId('join-video');
  assert.match(await join.getAttribute('href'), /^https:\/\/meet\.example\.org\/sunrise\/[A-Za-z0-9_-]{43}$/);
  assert.equal((await patient.getByTestId('appointment-heading').textContent()).trim(), 'Video visit');
  await ctx.close();
});
