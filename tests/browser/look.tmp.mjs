import { chromium } from 'playwright-core';
const port = process.argv[2]; const out = process.argv[3] ?? '/tmp/look';
const site = (s) => `http://${s}.localhost:${port}`;
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu','--disable-background-networking'] });
for (const [w, h] of [[390, 844], [1280, 800]]) {
  const ctx = await b.newContext({ viewport: { width: w, height: h } });
  const p = await ctx.newPage();
  const shot = async (name) => { await p.screenshot({ path: `${out}-${name}-${w}.png`, fullPage: true }); };
  await p.goto(site('sunrise') + '/'); await shot('public');
  await p.goto(site('sunrise') + '/login');
  await p.fill('#email', 'ana.lima@sunrise.example'); await p.fill('#password', 'demo passphrase for portal');
  await p.click('button[type=submit]'); await p.waitForLoadState(); await shot('home');
  await p.goto(site('sunrise') + '/appointments/new'); await p.click('text=Check-up'); await p.waitForLoadState(); await shot('book');
  await p.click('[data-testid=slot] >> nth=0'); await p.waitForLoadState(); await shot('confirm');
  await ctx.close();
}
await b.close();
