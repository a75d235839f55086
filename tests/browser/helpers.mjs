// Shared by the journeys: the browser and its two screen sizes, signing in, accessibility checks
// with axe-core, layout checks (no sideways scrolling, targets big enough to tap), dates in the
// clinic's time zone, screenshots, and the authenticator app's side of two-step sign-in
// (RFC 6238 TOTP), so a journey can type the code a phone would show.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const port = process.env.PORTAL_TEST_PORT;
export const base = process.env.PORTAL_TEST_BASE_DOMAIN ?? 'localhost';
export const site = (slug) => `http://${slug}.${base}:${port}`;
export const platform = `http://${base}:${port}`;
export const demoPassword = process.env.PORTAL_DEMO_PASSWORD ?? 'demo passphrase for portal';

// The two screens every new journey runs on: a laptop and a phone (390 × 844, an iPhone 12–15).
// A device scale of 1 keeps screenshots small; the layout is the same at any scale.
export const DESKTOP = { name: 'desktop', width: 1280, options: { viewport: { width: 1280, height: 800 } } };
export const PHONE = {
  name: 'phone',
  width: 390,
  options: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
};
export const SCREENS = [DESKTOP, PHONE];

// Debian's Chromium, never a downloaded browser.
export async function launch() {
  assert.ok(port, 'PORTAL_TEST_PORT must name the running server\'s port');
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A new page that records Content-Security-Policy violations in `page.cspViolations`.
export async function newPage(ctx) {
  const page = await ctx.newPage();
  page.cspViolations = [];
  page.on('console', (m) => {
    const text = m.text();
    if (/Content Security Policy/i.test(text) && !KNOWN_CSP_ISSUES.some((known) => known.test(text))) {
      page.cspViolations.push(text.slice(0, 300));
    }
  });
  return page;
}

// CSP violations of the pages themselves, reported to be fixed in the server, and let through
// here. Delete an entry once fixed.
const KNOWN_CSP_ISSUES = [];

// Signs in on the clinic's site and checks the start page. Returns the page.
export async function signIn(ctx, slug, email, password = demoPassword) {
  const page = await newPage(ctx);
  await page.goto(`${site(slug)}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  await checkPage(page, `${email}'s start page`);
  return page;
}

// Whether the page shows the phone menu (narrow screens) rather than the row of links.
export async function hasMenu(page) {
  return page.locator('[data-testid=menu] > summary').isVisible();
}

// Follows a link of the site's navigation as a person would: on a phone, open the menu first.
export async function navigate(page, name) {
  if (await hasMenu(page)) {
    const menu = page.getByTestId('menu');
    if (!(await menu.evaluate((d) => d.open))) await menu.locator('summary').click();
    await menu.getByRole('link', { name, exact: true }).click();
  } else {
    await page.locator('nav.nav-wide').getByRole('link', { name, exact: true }).click();
  }
  await page.waitForLoadState();
}

// Signs out with the visible "Sign out" button (inside the menu on a phone).
export async function signOut(page) {
  if (await hasMenu(page)) {
    const menu = page.getByTestId('menu');
    if (!(await menu.evaluate((d) => d.open))) await menu.locator('summary').click();
  }
  const button = page.locator('[data-testid=sign-out]:visible');
  await button.waitFor();
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/logout'),
    button.click(),
  ]);
  await page.waitForLoadState();
}

// Runs axe-core (WCAG 2.0, 2.1 and 2.2 A and AA rules) on the page as it is now and fails on
// any violation. The script is evaluated through the DevTools protocol, so the page's strict
// CSP still holds.
export async function checkA11y(page, label) {
  const cspBefore = page.cspViolations?.length;
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async (known) => {
    const r = await globalThis.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
    });
    return r.violations.map((v) => ({ ...v, nodes: v.nodes.filter((n) => !known.some(
      ([rule, within]) => v.id === rule && document.querySelector(n.target[0])?.closest(within))) }))
      .filter((v) => v.nodes.length > 0)
      .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  }, KNOWN_A11Y_ISSUES.map(({ rule, within }) => [rule, within]));
  if (cspBefore !== undefined) {
    // axe's own doing, not the page's: to read some style sheets (css-orientation-lock) it
    // adds a <style> element, which the page's CSP rightly refuses. Forget those reports.
    await page.waitForTimeout(50);
    const during = page.cspViolations.splice(cspBefore);
    page.cspViolations.push(...during.filter((v) => !/^Applying inline style violates/.test(v)));
  }
  assert.deepEqual(violations, [], `accessibility violations on ${label ?? page.url()}`);
}

// Accessibility failures of the pages themselves, reported to be fixed in the server, and let
// through here only inside the elements named (`within`, a CSS selector). Delete an entry once
// its page is fixed.
const KNOWN_A11Y_ISSUES = [];

// Layout checks axe cannot make, on the page as laid out now:
// 1. Nothing scrolls sideways (WCAG 1.4.10 Reflow): the document is no wider than the window.
// 2. Every visible control meets WCAG 2.2's 2.5.8 Target Size (Minimum): at least 24 × 24 CSS
//    px, or one of the two exceptions used here:
//    - inline: a link displayed inline whose parent element is a p, li, dd, dt, td, small or
//      span that holds other words too — a link inside a sentence, whose size the line of text
//      sets. (Kept narrow: a link alone in a list item or cell is not inline.)
//    - spacing: a 24 CSS px circle centred on the control's box meets no other control, nor
//      the circle of another undersized control (so a lone text link in a list, with space
//      around it, passes; two small links side by side do not).
//    A checkbox or radio inside its <label> is measured with the label, since tapping the
//    label works it too.
//    Controls must not overlap one another either (nested ones, like a checkbox in its
//    label, aside).
// 3. Primary actions (submit buttons and .button links) are at least 44 px tall, the size the
//    design system promises. Exempt: .link-button (a button drawn as a link, like "Sign out"
//    in the header).
export async function checkLayout(page, label) {
  const problems = await page.evaluate((known) => {
    const out = [];
    const name = (el) => {
      const id = el.id ? `#${el.id}` : '';
      const tid = el.dataset.testid ? `[data-testid=${el.dataset.testid}]` : '';
      const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().replace(/\s+/g, ' ').slice(0, 40);
      return `<${el.tagName.toLowerCase()}${id}${tid}> "${text}"`;
    };
    const root = document.documentElement;
    if (root.scrollWidth > window.innerWidth + 1) {
      const wide = [...document.body.querySelectorAll('*')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && el.checkVisibility())
        .slice(-3).map(name);
      out.push(`scrolls sideways: ${root.scrollWidth}px of content in a ${window.innerWidth}px window (${wide.join(', ')})`);
    }
    const shown = (el) => {
      if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
      const r = el.getBoundingClientRect();
      // Off the page to the left (the skip link until focused) or clipped to a pixel
      // (visually hidden) is not a target anyone taps.
      return r.width * r.height > 1 && r.right > 0 && r.left < root.scrollWidth;
    };
    const inline = (el) => {
      if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
      const parent = el.parentElement;
      if (!['P', 'LI', 'DD', 'DT', 'TD', 'SMALL', 'SPAN'].includes(parent.tagName)) return false;
      const others = [...parent.childNodes].filter((n) => n !== el).map((n) => n.textContent).join('');
      return /[\p{L}\p{N}]/u.test(others);
    };
    const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]';
    const targets = [...document.querySelectorAll(selector)].filter(shown).map((el) => {
      const box = el.matches('input[type=checkbox], input[type=radio]') && el.closest('label') ? el.closest('label') : el;
      const r = box.getBoundingClientRect();
      return { el, box, r, cx: r.left + r.width / 2, cy: r.top + r.height / 2,
        small: r.width + 0.5 < 24 || r.height + 0.5 < 24 };
    });
    const related = (a, b) => a.box.contains(b.box) || b.box.contains(a.box);
    // Distance from a point to a rectangle (0 inside it).
    const dist = (x, y, r) => Math.hypot(Math.max(r.left - x, 0, x - r.right), Math.max(r.top - y, 0, y - r.bottom));
    // Controls drawn over one another: a tap near the shared edge may work the wrong one.
    // (More than a pixel of overlap; nested controls, like a checkbox in its label, are fine.)
    targets.forEach((a, i) => targets.slice(i + 1).forEach((b) => {
      if (related(a, b) || known.some((w) => a.el.closest(w) && b.el.closest(w))) return;
      const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (w > 1 && h > 1) out.push(`targets overlap by ${w.toFixed(1)}×${h.toFixed(1)}: ${name(a.el)} and ${name(b.el)}`);
    }));
    for (const t of targets) {
      if (!t.small || inline(t.el)) continue;
      const crowded = targets.find((o) => o !== t && !related(o, t)
        && (dist(t.cx, t.cy, o.r) < 12 - 0.5 || (o.small && Math.hypot(o.cx - t.cx, o.cy - t.cy) < 24 - 0.5)));
      if (crowded) {
        out.push(`target smaller than 24×24 and too close to ${name(crowded.el)}: ${name(t.el)} is ${t.r.width.toFixed(1)}×${t.r.height.toFixed(1)}`);
      }
    }
    const primary = 'button[type=submit], button:not([type]), input[type=submit], .button';
    for (const el of document.querySelectorAll(primary)) {
      if (!shown(el) || el.matches('.link-button')) continue;
      const h = el.getBoundingClientRect().height;
      if (h + 0.5 < 44) out.push(`primary action under 44px tall: ${name(el)} is ${h.toFixed(1)}px`);
    }
    return out;
  }, KNOWN_OVERLAPS);
  assert.deepEqual(problems, [], `layout problems on ${label ?? page.url()} at ${page.viewportSize()?.width}px`);
}

// Overlapping controls of the pages themselves, reported to be fixed, let through here when
// both lie inside the element named (a CSS selector). Delete an entry once its page is fixed.
const KNOWN_OVERLAPS = [];

// Both checks, for every page a journey visits.
export async function checkPage(page, label) {
  await checkLayout(page, label);
  await checkA11y(page, label);
}

// Dates in a clinic's zone: YYYY-MM-DD for an instant (ISO string, Date or ms).
export function localDate(when, timeZone) {
  return new Date(when).toLocaleDateString('en-CA', { timeZone });
}

// The clinic's date `days` from now (YYYY-MM-DD).
export function daysAhead(days, timeZone = 'America/New_York') {
  return localDate(Date.now() + days * 86400000, timeZone);
}

// The day after `date` (YYYY-MM-DD).
export function nextDay(date) {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

// On the patient's booking (or moving) page, shows the first day on or after `minDate` that
// has open times, using the date strip and "Later week →" as a person would. Returns the day.
export async function showDayFrom(page, minDate) {
  for (let week = 0; week < 6; week++) {
    const links = page.getByTestId('date-strip').locator('a');
    const days = await links.evaluateAll((as) => as.map((a) => new URL(a.href).searchParams.get('day')));
    const i = days.findIndex((d) => d >= minDate);
    if (i >= 0) {
      if (await links.nth(i).getAttribute('aria-current') !== 'date') {
        await links.nth(i).click();
        await page.waitForLoadState();
      }
      assert.equal(await page.getByTestId('date-strip').locator('a[aria-current="date"]').count(), 1);
      const shown = await page.getByTestId('date-strip').locator('a[aria-current="date"]').getAttribute('href');
      assert.equal(new URL(shown, page.url()).searchParams.get('day'), days[i]);
      return days[i];
    }
    await page.getByTestId('later').click();
    await page.waitForLoadState();
  }
  assert.fail(`no open times on or after ${minDate}`);
}

// The first open time of the shown day in the morning or afternoon (the evening if that is
// all there is).
export async function daytimeSlot(page) {
  const daytime = page.locator('xpath=//h4[normalize-space(.)="Morning" or normalize-space(.)="Afternoon"]'
    + '/following-sibling::ul[1]//a[@data-testid="slot"]');
  return (await daytime.count()) > 0 ? daytime.first() : page.getByTestId('slot').first();
}

// The start of the visit a slot link offers, as a Date.
export async function slotStart(slot) {
  const href = await slot.getAttribute('href');
  return new Date(new URL(href, 'http://x').searchParams.get('start'));
}

// The first open time listed that starts at `earliest` (ms since the epoch) or later: staff
// see times from this very minute, and one about to start could pass while it is booked.
export async function slotFrom(page, earliest) {
  for (const slot of await page.getByTestId('slot').all()) {
    if ((await slotStart(slot)).getTime() >= earliest) return slot;
  }
  assert.fail(`no open time from ${new Date(earliest).toISOString()} on this page`);
}

const screenshotDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');

// Saves docs/screenshots/<name>-<width>.png: the whole page on a phone (unless `full` is
// false, for long pages), the window when wide.
// Only when asked (PORTAL_SCREENSHOTS=1, as `infra/screenshots` does): an ordinary test run
// leaves the committed pictures alone.
export async function screenshot(page, name, { full = true } = {}) {
  if (process.env.PORTAL_SCREENSHOTS !== '1') return;
  mkdirSync(screenshotDir, { recursive: true });
  const width = page.viewportSize().width;
  // The caret and focus ring would make every run's picture differ.
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({
    path: join(screenshotDir, `${name}-${width}.png`),
    fullPage: full && width < 768,
    animations: 'disabled',
    caret: 'hide',
  });
}

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    assert.ok(v >= 0, `not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// The 6-digit code for `secret` (base32) at `ms` since the epoch.
export function totp(secret, ms = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 1000 / 30)));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}
