// Appointment journeys in Debian's Chromium against the real server and workers started by
// infra/test, on the demo clinic Sunrise (scheduling seeded by `portal demo`). Patients use a
// phone and staff a laptop, so both layouts are exercised; every page is checked for
// accessibility and layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DESKTOP, PHONE, SCREENS, checkPage, daysAhead, daytimeSlot, launch, localDate, navigate,
  nextDay, showDayFrom, signIn, site, slotFrom, slotStart,
} from './helpers.mjs';

const mailDir = process.env.PORTAL_MAIL_DIR;
const TZ = 'America/New_York';
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// The appointment as the API tells it, fetched from the page with its own session.
async function apiAppointment(page, id) {
  return page.evaluate((apt) => fetch(`/api/v1/appointments/${apt}`, { credentials: 'same-origin' })
    .then((r) => r.json()), id);
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
  const patientCtx = await browser.newContext({ ...PHONE.options, acceptDownloads: true });
  const staffCtx = await browser.newContext(DESKTOP.options);
  const patient = await signIn(patientCtx, 'sunrise', 'ana.lima@sunrise.example');

  // Book: visit type → a day at least two days ahead (outside the 24-hour cut-off for
  // changes) on the date strip → a morning or afternoon time → confirm with a reason.
  await navigate(patient, 'Appointments');
  await checkPage(patient, 'appointments');
  await patient.getByTestId('book-link').click();
  await checkPage(patient, 'choose a visit type');
  await patient.getByRole('link', { name: 'Check-up', exact: true }).click();
  assert.match(await patient.locator('main').textContent(), /Times are in the clinic's time zone, America\/New_York/);
  await showDayFrom(patient, daysAhead(2, TZ));
  await checkPage(patient, 'open times');
  await (await daytimeSlot(patient)).click();
  await checkPage(patient, 'confirm the booking');
  const when = await patient.getByTestId('confirm-when').textContent();
  await patient.getByLabel(/What would you like to be seen for/).fill('a rash that will not go away');
  await patient.getByTestId('confirm-book').click();
  assert.match(await patient.getByTestId('notice').textContent(), /Your visit is booked/);
  await checkPage(patient, 'the booked visit');
  assert.equal((await patient.getByTestId('appointment-when').textContent()).trim(), when.trim());
  const id = new URL(patient.url()).pathname.split('/').pop();
  assert.match(id, /^apt_/);
  const appt = await apiAppointment(patient, id);
  const day = localDate(appt.starts_at, TZ);

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

  // Staff have the week open; the booking is there.
  const staff = await signIn(staffCtx, 'sunrise', 'admin@sunrise.example');
  await staff.goto(`${site('sunrise')}/staff/schedule?date=${day}&view=week`);
  const row = staff.locator(`[data-appointment="${id}"]`);
  await row.waitFor();
  await checkPage(staff, 'staff schedule, week');
  assert.match(await row.textContent(), /Ana Lima/);
  assert.match(await row.textContent(), /a rash that will not go away/);
  // Where the row sits: its day's heading and its time. (The week view groups rows by day, so
  // a move to the same time on another day of the week changes only the heading.)
  const placeOf = (apt) => {
    const r = document.querySelector(`[data-appointment="${apt}"]`);
    return r && `${r.closest('section').querySelector('h2').textContent} ${r.querySelector('td').textContent}`;
  };
  const before = await staff.evaluate(placeOf, id);

  // The patient moves the visit to a later day, through the confirmation page; the open
  // schedule follows without a reload.
  await patient.getByTestId('reschedule-link').click();
  await checkPage(patient, 'move the visit');
  await showDayFrom(patient, nextDay(day));
  await (await daytimeSlot(patient)).click();
  assert.equal(await patient.getByTestId('confirm-heading').textContent(), 'Move your visit?');
  assert.match(await patient.getByTestId('confirm-question').textContent(),
    new RegExp(`^Move your check-up with .+ from ${when.trim()} to .+\\?$`));
  await checkPage(patient, 'move your visit?');
  await patient.getByTestId('confirm-action').click();
  assert.match(await patient.getByTestId('notice').textContent(), /Your visit has moved/);
  await checkPage(patient, 'the moved visit');
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
  await staff.goto(`${site('sunrise')}/staff/schedule?date=${localDate(moved.starts_at, TZ)}&view=week`);
  await staff.locator(`[data-appointment="${id}"]`).waitFor();
  // What the member of staff is doing stays put while the schedule updates itself: a
  // half-changed filter keeps its value and focus stays on the patient's name.
  const providerFilter = staff.locator('#provider');
  const providers = await providerFilter.locator('option').evaluateAll((os) => os.map((o) => o.value));
  await providerFilter.selectOption(providers[1]);
  await staff.locator(`[data-appointment="${id}"] [data-focus="p-${id}"]`).focus();
  await patient.getByTestId('cancel-visit').click();
  await checkPage(patient, 'cancel this visit?');
  await patient.getByTestId('confirm-action').click();
  assert.equal(await patient.getByTestId('appointment-status').textContent(), 'Cancelled');
  await checkPage(patient, 'the cancelled visit');
  await staff.waitForFunction(
    (apt) => document.querySelector(`[data-appointment="${apt}"] [data-testid="row-status"]`)
      ?.textContent.trim() === 'Cancelled',
    id,
    { timeout: 15000 },
  );
  assert.equal(await staff.evaluate(() => document.activeElement?.getAttribute('data-focus')), `p-${id}`,
    'the live update gave focus back to the same link');
  assert.equal(await providerFilter.inputValue(), providers[1], 'the unsent filter kept its value');
  assert.equal(await staff.locator('#schedule-live').textContent(), 'The schedule was updated.');
  await checkPage(staff, 'staff schedule after the cancellation');
  await emailsTo('ana.lima@sunrise.example', 'is cancelled');

  assert.deepEqual(patient.cspViolations, []);
  assert.deepEqual(staff.cspViolations, []);
  await patientCtx.close();
  await staffCtx.close();
});

test('Staff book for a patient and the open schedule shows it live', async () => {
  const staffCtx = await browser.newContext(DESKTOP.options);
  const deskCtx = await browser.newContext(PHONE.options);
  const staff = await signIn(staffCtx, 'sunrise', 'admin@sunrise.example');
  const desk = await signIn(deskCtx, 'sunrise', 'clinician@sunrise.example');
  assert.match(desk.url(), /\/staff\/schedule\?mine=1$/, 'a clinician starts on their own schedule');
  await staff.goto(`${site('sunrise')}/admin/patients?q=Okafor`);
  await checkPage(staff, 'patient search');
  await staff.getByTestId('patient-link').filter({ hasText: 'Okafor' }).first().click();
  await checkPage(staff, 'patient page');
  await staff.getByTestId('book-for-patient').click();
  await checkPage(staff, 'staff booking');
  await staff.locator('#visit_type').selectOption({ label: 'Annual physical (60 min)' });
  await staff.getByRole('button', { name: 'Show times' }).click();
  await checkPage(staff, 'staff booking, open times');
  const slot = await slotFrom(staff, Date.now() + 10 * 60000);
  const start = await slotStart(slot);
  const day = localDate(start, TZ);
  await desk.goto(`${site('sunrise')}/staff/schedule?date=${day}`);
  await checkPage(desk, 'clinician\'s schedule');
  const rowsBefore = await desk.getByTestId('schedule-row').count();
  await slot.click();
  assert.match(await staff.getByTestId('confirm-question').textContent(), /^Book Ben Okafor’s annual physical with /);
  await checkPage(staff, 'book this visit?');
  await staff.getByTestId('confirm-action').click();
  assert.match(await staff.getByTestId('notice').textContent(), /Visit booked/);
  await checkPage(staff, 'schedule after booking');
  // The other member of staff sees it arrive.
  await desk.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="schedule-row"]').length > n,
    rowsBefore,
    { timeout: 15000 },
  );
  assert.match(await desk.locator('#schedule').textContent(), /Ben Okafor/);
  await checkPage(desk, 'clinician\'s schedule, updated');
  assert.deepEqual(staff.cspViolations, []);
  assert.deepEqual(desk.cspViolations, []);
  await staffCtx.close();
  await deskCtx.close();
});

for (const screen of SCREENS) {
  test(`A video visit shows its join link (${screen.width} px)`, async () => {
    const ctx = await browser.newContext(screen.options);
    const email = screen === DESKTOP ? 'ben.okafor@sunrise.example' : 'chloe.nguyen@sunrise.example';
    const patient = await signIn(ctx, 'sunrise', email);
    await patient.getByTestId('quick-book').click();
    await checkPage(patient, 'choose a visit type');
    await patient.getByRole('link', { name: 'Video visit', exact: true }).click();
    await checkPage(patient, 'video visit times');
    await patient.getByTestId('slot').first().click();
    await checkPage(patient, 'check and book the video visit');
    await patient.getByTestId('confirm-book').click();
    assert.match(await patient.getByTestId('notice').textContent(), /Your visit is booked/);
    const join = patient.getByTestId('join-video');
    assert.match(await join.getAttribute('href'), /^https:\/\/meet\.example\.org\/sunrise\/[A-Za-z0-9_-]{43}$/);
    assert.equal((await patient.getByTestId('appointment-heading').textContent()).trim(), 'Video visit');
    await checkPage(patient, 'the video visit');
    assert.deepEqual(patient.cspViolations, []);
    await ctx.close();
  });
}
