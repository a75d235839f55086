// Identity journeys in Debian's Chromium against the real server and workers started by
// infra/test (PORTAL_DEV=1, so invitations can be opened from the dev mailbox).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { checkA11y, totp } from './helpers.mjs';

const port = process.env.PORTAL_TEST_PORT;
const base = process.env.PORTAL_TEST_BASE_DOMAIN ?? 'localhost';
const site = (slug) => `http://${slug}.${base}:${port}`;
const platform = `http://${base}:${port}`;
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

// Opens the newest email to `to` in the dev mailbox and follows its link. The job pipeline is
// asynchronous, so the mailbox is reloaded until the email is there.
async function followEmailLink(page, to) {
  for (let i = 0; i < 100; i++) {
    await page.goto(`${platform}/dev/mailbox?to=${encodeURIComponent(to)}`);
    const link = page.locator('[data-testid="mail-link"]').first();
    if (await link.count() > 0) {
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
  const adminCtx = await browser.newContext();
  const admin = await adminCtx.newPage();
  const csp = [];
  admin.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });

  // 1. Sign up on the platform's site, with the live availability check.
  await admin.goto(`${platform}/signup`);
  await checkA11y(admin, 'sign-up form');
  await admin.getByLabel('Clinic name').fill('Journey Health');
  await admin.getByLabel('Web address').fill(slug);
  await assert.doesNotReject(admin.getByTestId('slug-status').filter({ hasText: 'is available' }).waitFor());
  await admin.getByLabel('Time zone').fill('America/Denver');
  await admin.getByLabel('Your name').fill('Jordan Journey');
  await admin.getByLabel('Your email').fill(adminEmail);
  await admin.getByRole('button', { name: 'Create our portal' }).click();
  // A worker sets the clinic up; the page follows it by itself and then says what to do.
  await admin.getByTestId('message').filter({ hasText: 'sent an invitation' }).waitFor();
  await checkA11y(admin, 'sign-up done');

  // 2. The admin opens the invitation, sets a password and lands in the console.
  await followEmailLink(admin, adminEmail);
  await admin.waitForURL(`${site(slug)}/invite`);
  await admin.getByLabel('New password', { exact: true }).fill('granite willow compass');
  await admin.getByLabel('Repeat the new password').fill('granite willow compass');
  await admin.getByRole('button', { name: 'Create my account' }).click();

  // 2b. A new clinic requires two-step sign-in of its administrators: set it up first.
  await admin.waitForURL(`${site(slug)}/account/security`);
  await checkA11y(admin, 'two-step sign-in required');
  await admin.getByLabel('Your password').fill('granite willow compass');
  await admin.getByRole('button', { name: 'Set up two-step sign-in' }).click();
  await checkA11y(admin, 'scan the QR code');
  const secret = (await admin.getByTestId('totp-secret').textContent()).replace(/\s/g, '');
  const enrolledAt = Date.now();
  await admin.getByLabel('Code from the app').fill(totp(secret, enrolledAt));
  await admin.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
  assert.equal(await admin.getByTestId('recovery-codes').locator('li').count(), 10);
  await checkA11y(admin, 'recovery codes');
  await admin.getByRole('link', { name: 'Continue' }).click();
  await admin.waitForURL(`${site(slug)}/admin`);
  assert.equal(await admin.getByTestId('console-heading').textContent(), 'Clinic console');
  await checkA11y(admin, 'clinic console');

  // 2c. Signed out, the password alone is not enough: the code from the app is asked for.
  // (The code used to set it up is spent; the app's next one is accepted a step early.)
  await admin.getByTestId('sign-out').click();
  await admin.goto(`${site(slug)}/login`);
  await admin.getByLabel('Email').fill(adminEmail);
  await admin.getByLabel('Password').fill('granite willow compass');
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${site(slug)}/login/code`);
  await checkA11y(admin, 'sign-in code');
  assert.equal(await meStatus(admin), 401, 'no session until the code is in');
  await admin.getByLabel('Sign-in code').fill(totp(secret, Math.max(Date.now(), enrolledAt + 30_000)));
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${site(slug)}/admin`);
  assert.equal(await meStatus(admin), 200);

  // 3. The admin adds a patient and emails an invitation.
  await admin.getByLabel('Given name').fill('Pat');
  await admin.getByLabel('Family name').fill('Journey');
  await admin.getByLabel('Date of birth').fill('1988-08-08');
  await admin.locator('#patient_email').fill(patientEmail);
  await admin.getByLabel('Email a portal invitation now').check();
  await admin.getByRole('button', { name: 'Add patient' }).click();
  assert.match(await admin.getByTestId('notice').textContent(), /Invitation sent/);

  // 4. The patient, in their own browser, accepts it: date of birth and a password.
  const patientCtx = await browser.newContext();
  const patient = await patientCtx.newPage();
  await followEmailLink(patient, patientEmail);
  await patient.waitForURL(`${site(slug)}/invite`);
  await checkA11y(patient, 'accept the invitation');
  await patient.getByLabel('Your date of birth').fill('1988-08-08');
  await patient.getByLabel('New password', { exact: true }).fill('harbor lights at dusk');
  await patient.getByLabel('Repeat the new password').fill('harbor lights at dusk');
  await patient.getByRole('button', { name: 'Create my account' }).click();
  await patient.waitForURL(`${site(slug)}/`);
  await patient.getByTestId('sign-out').click();

  // 5. Sign in on the clinic's site, see the branded dashboard, sign out.
  await patient.goto(`${site(slug)}/login`);
  await patient.getByLabel('Email').fill(patientEmail);
  await patient.getByLabel('Password').fill('harbor lights at dusk');
  await patient.getByRole('button', { name: 'Sign in' }).click();
  await patient.waitForURL(`${site(slug)}/`);
  assert.equal(await patient.getByTestId('dashboard-heading').textContent(), 'Hello, Pat');
  await checkA11y(patient, 'patient dashboard');
  assert.equal(await patient.getByTestId('clinic-name').textContent(), 'Journey Health');
  const colour = await patient.getByTestId('clinic-header').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(colour, 'rgb(29, 78, 216)'); // the new clinic's default #1d4ed8
  await patient.getByTestId('sign-out').click();
  assert.match(await patient.locator('[role="status"]').textContent(), /signed out/);
  await checkA11y(patient, 'signed out');
  assert.equal(await meStatus(patient), 401);

  assert.deepEqual(csp, [], 'no Content-Security-Policy violations');
  await adminCtx.close();
  await patientCtx.close();
});

test('A Harbor session is rejected on Sunrise\'s host', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${site('harbor')}/login`);
  await page.getByLabel('Email').fill('ana.lima@harbor.example');
  await page.getByLabel('Password').fill(demoPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${site('harbor')}/`);
  assert.equal(await page.getByTestId('dashboard-heading').textContent(), 'Hello, Ana');

  // Copy Harbor's session cookie onto Sunrise's host, as a thief would.
  const cookies = await ctx.cookies(site('harbor'));
  const session = cookies.find((c) => c.name.endsWith('portal_session'));
  assert.ok(session, 'signed in to Harbor');
  await ctx.addCookies([{ name: session.name, value: session.value, url: site('sunrise') }]);
  await page.goto(`${site('sunrise')}/`);
  assert.equal(await meStatus(page), 401);
  assert.equal(await page.getByTestId('dashboard-heading').count(), 0, 'no dashboard on Sunrise');
  assert.equal(await page.getByRole('link', { name: 'Sign in' }).first().isVisible(), true);
  // Harbor's own session still works on Harbor.
  await page.goto(`${site('harbor')}/`);
  assert.equal(await meStatus(page), 200);
  await ctx.close();
});
