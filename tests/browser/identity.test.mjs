// Identity journeys in Debian's Chromium against the real server and workers started by
// infra/test (PORTAL_DEV=1, so invitations can be opened from the dev mailbox). The clinic's
// admin works on a laptop and the patient on a phone; every page is checked for accessibility
// and layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  DESKTOP, PHONE, checkPage, demoPassword, launch, navigate, newPage, platform, signOut, site, totp,
} from './helpers.mjs';

let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Opens the newest email to `to` in the dev mailbox and follows its link. The job pipeline is
// asynchronous, so the mailbox is reloaded until the email is there.
async function followEmailLink(page, to) {
  for (let i = 0; i < 100; i++) {
    await page.goto(`${platform}/dev/mailbox?to=${encodeURIComponent(to)}`);
    const link = page.locator('[data-testid="mail-link"]').first();
    if (await link.count() > 0) {
      await checkPage(page, 'dev mailbox');
      // The worker commits a link's token just after the email is out; a link opened in that
      // instant is not valid yet, so open it again a moment later (as a person would).
      const href = await link.getAttribute('href');
      for (let j = 0; j < 50; j++) {
        const resp = await page.goto(href);
        if (resp.status() !== 410) return;
        await page.waitForTimeout(100);
      }
      assert.fail(`the link emailed to ${to} never became valid`);
    }
    await page.waitForTimeout(200);
  }
  assert.fail(`no email to ${to} arrived`);
}

// GET /api/v1/me from the page itself, with the browser's cookies for the page's host.
async function meStatus(page) {
  return page.evaluate(() => fetch('/api/v1/me', { credentials: 'same-origin' }).then((r) => r.status));
}

test('Sign up a clinic, invite a patient, and the patient signs in to the branded portal', async () => {
  const slug = `journey${Date.now() % 1000000}`;
  const adminEmail = `admin@${slug}.example`;
  const patientEmail = `pat@${slug}.example`;
  const adminCtx = await browser.newContext(DESKTOP.options);
  const admin = await newPage(adminCtx);

  // 1. Sign up on the platform's site, with the live availability check.
  await admin.goto(`${platform}/signup`);
  await checkPage(admin, 'sign-up form');
  await admin.getByLabel('Clinic name').fill('Journey Health');
  await admin.getByLabel('Web address').fill(slug);
  await assert.doesNotReject(admin.getByTestId('slug-status').filter({ hasText: 'is available' }).waitFor());
  await admin.getByLabel('Time zone').fill('America/Denver');
  await admin.getByLabel('Your name').fill('Jordan Journey');
  await admin.getByLabel('Your email').fill(adminEmail);
  await admin.getByRole('button', { name: 'Create our portal' }).click();
  // A worker sets the clinic up; the page follows it by itself and then says what to do.
  await admin.getByTestId('message').filter({ hasText: 'sent an invitation' }).waitFor();
  await checkPage(admin, 'sign-up done');

  // 2. The admin opens the invitation, sets a password and lands in the console.
  await followEmailLink(admin, adminEmail);
  await admin.waitForURL(`${site(slug)}/invite`);
  await admin.getByLabel('New password', { exact: true }).fill('granite willow compass');
  await admin.getByLabel('Repeat the new password').fill('granite willow compass');
  await admin.getByRole('button', { name: 'Create my account' }).click();

  // 2b. A new clinic requires two-step sign-in of its administrators: set it up first.
  await admin.waitForURL(`${site(slug)}/account/security`);
  await checkPage(admin, 'two-step sign-in required');
  await admin.getByLabel('Your password').fill('granite willow compass');
  await admin.getByRole('button', { name: 'Set up two-step sign-in' }).click();
  await checkPage(admin, 'scan the QR code');
  const secret = (await admin.getByTestId('totp-secret').textContent()).replace(/\s/g, '');
  const enrolledAt = Date.now();
  await admin.getByLabel('Code from the app').fill(totp(secret, enrolledAt));
  await admin.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
  assert.equal(await admin.getByTestId('recovery-codes').locator('li').count(), 10);
  await checkPage(admin, 'recovery codes');
  await admin.getByRole('link', { name: 'Continue' }).click();
  await admin.waitForURL(`${site(slug)}/admin`);
  assert.equal(await admin.getByTestId('console-heading').textContent(), 'Clinic set-up');
  assert.match(await admin.getByTestId('checklist').textContent(), /Get your clinic ready/);
  await checkPage(admin, 'clinic set-up');

  // 2c. Signed out, the password alone is not enough: the code from the app is asked for.
  // (The code used to set it up is spent; the app's next one is accepted a step early.)
  await signOut(admin);
  await admin.goto(`${site(slug)}/login`);
  await checkPage(admin, 'sign in');
  await admin.getByLabel('Email').fill(adminEmail);
  await admin.getByLabel('Password').fill('granite willow compass');
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${site(slug)}/login/code`);
  await checkPage(admin, 'sign-in code');
  assert.equal(await meStatus(admin), 401, 'no session until the code is in');
  await admin.getByLabel('Sign-in code').fill(totp(secret, Math.max(Date.now(), enrolledAt + 30_000)));
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${site(slug)}/admin`);
  assert.equal(await meStatus(admin), 200);

  // 3. The admin adds a patient and emails an invitation, from the patient search page.
  await navigate(admin, 'Patients');
  assert.equal(new URL(admin.url()).pathname, '/admin/patients');
  await checkPage(admin, 'patients');
  await admin.getByTestId('add-patient').click();
  await checkPage(admin, 'add a patient');
  // Sent empty first: the error summary lists what is missing, each linked to its field.
  await admin.getByTestId('add-patient-submit').click();
  assert.match(await admin.title(), /^Error: /);
  assert.equal(await admin.getByTestId('error-summary').locator('h2').textContent(), 'There is a problem');
  const links = await admin.getByTestId('form-error').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.ok(links.includes('#given_name') && links.includes('#dob_day'), `errors link to: ${links}`);
  await checkPage(admin, 'add a patient, with errors');
  await admin.getByLabel('First name').fill('Pat');
  await admin.getByLabel('Last name').fill('Journey');
  await admin.locator('#dob_day').fill('8');
  await admin.locator('#dob_month').fill('8');
  await admin.locator('#dob_year').fill('1988');
  await admin.getByLabel(/Email address/).fill(patientEmail);
  await admin.getByLabel('Email a portal invitation now').check();
  await admin.getByTestId('add-patient-submit').click();
  assert.match(await admin.getByTestId('notice').textContent(), /Invitation sent/);
  assert.equal(await admin.getByTestId('patient-heading').textContent(), 'Pat Journey');
  await checkPage(admin, 'the new patient');

  // 4. The patient, in their own browser, accepts it: date of birth and a password.
  const patientCtx = await browser.newContext(PHONE.options);
  const patient = await newPage(patientCtx);
  await followEmailLink(patient, patientEmail);
  await patient.waitForURL(`${site(slug)}/invite`);
  await checkPage(patient, 'accept the invitation');
  await patient.locator('#dob_day').fill('8');
  await patient.locator('#dob_month').fill('8');
  await patient.locator('#dob_year').fill('1988');
  await patient.getByLabel('New password', { exact: true }).fill('harbor lights at dusk');
  await patient.getByLabel('Repeat the new password').fill('harbor lights at dusk');
  await patient.getByRole('button', { name: 'Create my account' }).click();
  await patient.waitForURL(`${site(slug)}/`);
  await signOut(patient);

  // 5. Sign in on the clinic's site, see the branded dashboard, sign out.
  await patient.goto(`${site(slug)}/login`);
  await checkPage(patient, 'sign in on a phone');
  await patient.getByLabel('Email').fill(patientEmail);
  await patient.getByLabel('Password').fill('harbor lights at dusk');
  await patient.getByRole('button', { name: 'Sign in' }).click();
  await patient.waitForURL(`${site(slug)}/`);
  assert.equal(await patient.getByTestId('dashboard-heading').textContent(), 'Hello, Pat');
  await checkPage(patient, 'patient dashboard');
  assert.equal(await patient.getByTestId('clinic-name').textContent(), 'Journey Health');
  const colour = await patient.getByTestId('clinic-header').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(colour, 'rgb(29, 78, 216)'); // the new clinic's default #1d4ed8
  await signOut(patient);
  assert.match(await patient.locator('[role="status"]').first().textContent(), /signed out/);
  await checkPage(patient, 'signed out');
  assert.equal(await meStatus(patient), 401);

  assert.deepEqual(admin.cspViolations, [], 'no Content-Security-Policy violations');
  assert.deepEqual(patient.cspViolations, [], 'no Content-Security-Policy violations');
  await adminCtx.close();
  await patientCtx.close();
});

test('A Harbor session is rejected on Sunrise\'s host', async () => {
  const ctx = await browser.newContext(PHONE.options);
  const page = await newPage(ctx);
  await page.goto(`${site('harbor')}/login`);
  await checkPage(page, 'Harbor sign in');
  await page.getByLabel('Email').fill('ana.lima@harbor.example');
  await page.getByLabel('Password').fill(demoPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${site('harbor')}/`);
  assert.equal(await page.getByTestId('dashboard-heading').textContent(), 'Hello, Ana');
  await checkPage(page, 'Harbor patient home');

  // Copy Harbor's session cookie onto Sunrise's host, as a thief would.
  const cookies = await ctx.cookies(site('harbor'));
  const session = cookies.find((c) => c.name.endsWith('portal_session'));
  assert.ok(session, 'signed in to Harbor');
  await ctx.addCookies([{ name: session.name, value: session.value, url: site('sunrise') }]);
  await page.goto(`${site('sunrise')}/`);
  assert.equal(await meStatus(page), 401);
  assert.equal(await page.getByTestId('dashboard-heading').count(), 0, 'no dashboard on Sunrise');
  assert.equal(await page.locator('main').getByRole('link', { name: 'Sign in' }).isVisible(), true);
  await checkPage(page, 'Sunrise home, signed out');
  // Harbor's own session still works on Harbor.
  await page.goto(`${site('harbor')}/`);
  assert.equal(await meStatus(page), 200);
  await ctx.close();
});
