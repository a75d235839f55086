// Card payments (issue 13) against the local Stripe stand-in (infra/stripe_fake.py, started by
// infra/test): a clinic admin's Connect onboarding reaches "Enabled"; then, on a laptop and a
// phone, billing issues a statement, the patient pays part of it by card on Stripe's page and
// comes back to a confirmation, and someone without an account pays the rest with the code
// from the statement. Every page of ours — and of the stand-in's — passes axe and the layout
// checks. Runs on the demo clinic seeded by `portal demo`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  DESKTOP, PHONE, SCREENS, checkPage, launch, localDate, navigate, newPage, platform, screenshot, signIn, signOut, site,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const ZONE = 'America/New_York';
const stripe = process.env.PORTAL_TEST_STRIPE_URL;

test('A clinic admin connects the clinic\'s Stripe account and onboarding reaches Enabled', async () => {
  assert.ok(stripe, 'PORTAL_TEST_STRIPE_URL names the Stripe stand-in');
  const ctx = await browser.newContext(DESKTOP.options);
  const page = await signIn(ctx, 'sunrise', 'admin@sunrise.example');
  await page.goto(`${site('sunrise')}/admin`);
  await page.getByTestId('payments-link').click();
  await page.waitForLoadState();
  assert.equal(await page.getByTestId('payments-stage').textContent(), 'Not connected');
  await checkPage(page, 'card payments, not connected');
  await page.getByTestId('connect-stripe').click();
  await page.waitForURL((u) => u.href.startsWith(stripe));
  await checkPage(page, 'Stripe onboarding');
  await page.getByRole('button', { name: 'Submit details' }).click();
  await page.waitForURL(`${site('sunrise')}/admin/payments?done=returned`);
  assert.equal(await page.getByTestId('payments-stage').textContent(), 'Enabled');
  await checkPage(page, 'card payments, enabled');
  await screenshot(page, 'payments-enabled');
  await ctx.close();
});

// Billing issues a statement of `charge` for a patient (Chloe Nguyen unless named) and returns
// its number.
async function issue(ctx, charge, family = 'Nguyen', listed = 'Nguyen, Chloe') {
  const page = await signIn(ctx, 'sunrise', 'billing@sunrise.example');
  await navigate(page, 'Patients');
  await page.getByLabel('Find a patient').fill(family);
  await page.getByTestId('search-patients').click();
  await page.getByTestId('patient-link').filter({ hasText: listed }).click();
  await page.getByTestId('patient-billing').click();
  await page.getByTestId('start-statement').click();
  await page.waitForLoadState();
  await page.getByLabel('Date of service').fill(localDate(Date.now() - 86400000, ZONE));
  await page.getByLabel('Service', { exact: true }).fill('New patient visit');
  await page.getByLabel('Charge').fill(charge);
  await page.getByTestId('add-line').click();
  await page.waitForLoadState();
  await page.getByTestId('issue').click();
  await page.waitForLoadState();
  await page.getByTestId('confirm-action').click();
  await page.waitForLoadState();
  const heading = await page.getByTestId('statement-heading').textContent();
  await signOut(page);
  await page.close();
  return heading.match(/Statement (\d+)/)[1];
}

// On Stripe's page: a card, then Pay.
async function payOnStripe(page, label) {
  await page.waitForURL((u) => u.href.startsWith(stripe));
  await checkPage(page, label);
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay' }).click();
}

for (const screen of SCREENS) {
  test(`A patient pays part of a statement by card; someone without an account pays the rest with its code (${screen.width} px)`, async () => {
    const ctx = await browser.newContext(screen.options);
    const number = await issue(ctx, '90.00');

    const page = await signIn(ctx, 'sunrise', 'chloe.nguyen@sunrise.example');
    await navigate(page, 'Bills');
    await page.getByRole('link', { name: `Statement ${number}` }).click();
    await page.waitForLoadState();
    const code = await page.getByTestId('guest-code').textContent();
    await checkPage(page, 'a statement with online payment');
    await page.getByTestId('pay-online').click();
    await page.waitForLoadState();
    await checkPage(page, 'how much to pay');
    await page.getByLabel('How much to pay now').fill('35');
    await page.getByTestId('pay-continue').click();
    await page.waitForLoadState();
    assert.match(await page.getByTestId('confirm-question').textContent(), /Pay \$35\.00 to .+ for statement \d+\?/);
    await checkPage(page, 'the check before paying');
    await page.getByTestId('confirm-action').click();
    await payOnStripe(page, 'Stripe checkout');
    await page.waitForURL((u) => u.pathname.endsWith('/paid'));
    assert.match(await page.getByTestId('payment-result').textContent(), /received your payment of \$35\.00/);
    await checkPage(page, 'payment received');
    await screenshot(page, `payment-received-${screen.name}`);
    await page.getByTestId('payment-back').click();
    await page.waitForLoadState();
    assert.equal(await page.getByTestId('still-due').textContent(), '$55.00');
    // The receipt: beside the payment, printed by the workers when it is opened, and an email
    // that says only that a payment arrived.
    await page.getByTestId('receipt-link').click();
    await page.waitForLoadState();
    await page.locator('[data-testid="document-state"][data-status="ready"]').waitFor({ timeout: 30000 });
    assert.match(await page.locator('h1').textContent(), /Payment receipt/);
    await checkPage(page, 'a payment receipt');
    let told = false;
    for (let i = 0; i < 100 && !told; i++) {
      await page.goto(`${platform}/dev/mailbox?to=${encodeURIComponent('chloe.nguyen@sunrise.example')}`);
      const mail = await page.locator('main').textContent();
      told = mail.includes('We received a payment');
      if (told) assert.doesNotMatch(mail, /\$35|New patient visit/);
      else await page.waitForTimeout(200);
    }
    assert.ok(told, 'a payment-received email arrived');
    await page.goto(`${site('sunrise')}/`);
    await signOut(page);

    // Someone without an account, with the code from the statement.
    const guest = await newPage(ctx);
    await guest.goto(`${site('sunrise')}/pay`);
    await checkPage(guest, 'pay a bill');
    await guest.getByLabel('Payment code').fill(code.toLowerCase());
    await guest.getByTestId('find-statement').click();
    await guest.waitForLoadState();
    assert.equal(await guest.getByTestId('guest-due').textContent(), '$55.00');
    assert.doesNotMatch(await guest.locator('main').textContent(), /Chloe|Nguyen|New patient visit/);
    await checkPage(guest, 'a statement by its code');
    await screenshot(guest, `pay-by-code-${screen.name}`);
    await guest.getByTestId('guest-pay').click();
    await payOnStripe(guest, 'Stripe checkout for a guest');
    await guest.waitForURL((u) => u.pathname === '/pay/done');
    assert.match(await guest.getByTestId('payment-result').textContent(), /received your payment of \$55\.00/);
    await checkPage(guest, 'a guest\'s payment received');
    await guest.close();

    // Billing staff see both payments, refund part of one, and reconciliation finds
    // everything matched.
    const staff = await signIn(ctx, 'sunrise', 'billing@sunrise.example');
    await navigate(staff, 'Patients');
    await staff.getByLabel('Find a patient').fill('Nguyen');
    await staff.getByTestId('search-patients').click();
    await staff.getByTestId('patient-link').filter({ hasText: 'Nguyen, Chloe' }).click();
    await staff.getByTestId('patient-billing').click();
    await staff.getByRole('link', { name: `Statement ${number}` }).click();
    await staff.waitForLoadState();
    assert.equal(await staff.getByTestId('payment').count(), 2);
    await staff.getByTestId('refund-link').first().click();
    await staff.waitForLoadState();
    await checkPage(staff, 'a refund');
    await staff.getByLabel('Amount to refund').fill('10');
    await staff.getByLabel('Reason (optional)').fill('Courtesy discount');
    await staff.getByTestId('refund-continue').click();
    await staff.waitForLoadState();
    assert.match(await staff.getByTestId('confirm-question').textContent(), /Refund \$10\.00 to Chloe Nguyen/);
    await checkPage(staff, 'the check before refunding');
    await staff.getByTestId('confirm-action').click();
    await staff.waitForLoadState();
    assert.match(await staff.getByTestId('notice').textContent(), /Refunded/);
    assert.equal(await staff.getByTestId('still-due').textContent(), '$10.00');
    await checkPage(staff, 'a statement after a refund');
    await screenshot(staff, `billing-refunded-${screen.name}`);
    await staff.goto(`${site('sunrise')}/billing/reconciliation`);
    await staff.getByTestId('check-now').click();
    await staff.waitForLoadState();
    for (let i = 0; i < 100 && await staff.getByTestId('checked').textContent() === 'never'; i += 1) {
      await staff.waitForTimeout(200);
      await staff.reload();
    }
    await staff.getByTestId('all-matched').waitFor();
    await checkPage(staff, 'reconciliation, everything matched');
    await screenshot(staff, `billing-reconciliation-${screen.name}`);
    await ctx.close();
  });
}

test('Billing staff set up a payment plan; the patient pays the first instalment, saves the card, and later turns automatic payments off (phone)', async () => {
  const ctx = await browser.newContext(PHONE.options);
  const number = await issue(ctx, '120.00', 'Lima', 'Lima, Ana');
  const staff = await signIn(ctx, 'sunrise', 'billing@sunrise.example');
  await navigate(staff, 'Patients');
  await staff.getByLabel('Find a patient').fill('Lima');
  await staff.getByTestId('search-patients').click();
  await staff.getByTestId('patient-link').filter({ hasText: 'Lima, Ana' }).click();
  await staff.getByTestId('patient-billing').click();
  await staff.getByRole('link', { name: `Statement ${number}` }).click();
  await staff.waitForLoadState();
  await checkPage(staff, 'a statement before its payment plan');
  // A plan of one instalment is refused with the reason beside the field.
  await staff.getByLabel('Number of instalments').fill('1');
  await staff.getByTestId('set-up-plan').click();
  await staff.waitForLoadState();
  assert.match(await staff.locator('#count-error').textContent(), /between 2 and 24/);
  await checkPage(staff, 'a payment plan refused');
  await staff.getByLabel('Number of instalments').fill('4');
  await staff.getByTestId('set-up-plan').click();
  await staff.waitForLoadState();
  assert.match(await staff.getByTestId('notice').textContent(), /Payment plan set up/);
  assert.equal(await staff.getByTestId('instalment').count(), 4);
  await checkPage(staff, 'a statement with a payment plan');
  await signOut(staff);

  const page = await signIn(ctx, 'sunrise', 'ana.lima@sunrise.example');
  await navigate(page, 'Bills');
  await page.getByRole('link', { name: `Statement ${number}` }).click();
  await page.waitForLoadState();
  await checkPage(page, 'a statement with instalments');
  await page.getByTestId('pay-instalment').click();
  await page.waitForLoadState();
  assert.equal(await page.getByLabel('How much to pay now').inputValue(), '30.00');
  assert.ok(!await page.getByTestId('autopay').isChecked(), 'saving the card is offered, not ticked');
  await page.getByTestId('autopay').check();
  await checkPage(page, 'paying an instalment');
  await page.getByTestId('pay-continue').click();
  await page.waitForLoadState();
  assert.match(await page.locator('main').textContent(), /charged each following instalment on its due date/);
  await checkPage(page, 'the check before paying an instalment');
  await page.getByTestId('confirm-action').click();
  await payOnStripe(page, 'Stripe checkout saving the card');
  await page.waitForURL((u) => u.pathname.endsWith('/paid'));
  await page.getByTestId('payment-back').click();
  await page.waitForLoadState();
  // The card is taken for the plan once Stripe's event about the payment is applied.
  for (let i = 0; i < 100 && await page.getByTestId('autopay-on').count() === 0; i += 1) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  assert.match(await page.getByTestId('autopay-on').textContent(), /Automatic payments are on/);
  assert.equal(await page.getByTestId('still-due').textContent(), '$90.00');
  await checkPage(page, 'a plan with automatic payments');
  await screenshot(page, 'payment-plan-phone');
  await page.getByTestId('autopay-stop').click();
  await page.waitForLoadState();
  await checkPage(page, 'the check before turning automatic payments off');
  await page.getByTestId('confirm-action').click();
  await page.waitForLoadState();
  assert.match(await page.getByTestId('notice').textContent(), /Automatic payments are off/);
  assert.match(await page.getByTestId('autopay-off').textContent(), /Automatic payments are off/);
  await ctx.close();
});
