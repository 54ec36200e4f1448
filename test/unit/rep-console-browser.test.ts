import t from 'tap';
import { existsSync } from 'node:fs';
import { ScreenPopStore, type ScreenPop } from '../../src/escalation/screen-pop.ts';
import { startRepConsole } from '../../src/escalation/console/server.ts';
import type { Logger } from '../../src/ops/log.ts';

import { requireTool } from '../helpers/require.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = requireTool(t, 'rep console in a headless Chromium', existsSync(CHROMIUM), CHROMIUM, 'chromium');

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

function makePop(id: string, over: Partial<ScreenPop> = {}): ScreenPop {
  return {
    id,
    callId: `${id}@127.0.0.1`,
    tenantId: 'acme',
    tenantName: 'Acme Supply',
    createdAt: Date.now(),
    status: 'ringing',
    target: { name: 'Dana Whitfield', extension: '1001', kind: 'rep' },
    trigger: 'explicit',
    reason: 'caller asked for a person during a reorder: "get me a <human>"',
    caller: { phone: '+15551230000', name: 'Pat <b>Jones</b>', language: 'en' },
    account: { id: 'A1', name: 'Jones Plumbing', number: '88812', tier: 'gold' },
    transcript: [
      { role: 'agent', text: 'Thanks for calling Acme, how can I help?', at: Date.now() - 2000 },
      { role: 'caller', text: 'I want to reorder valves', at: Date.now() - 1500 },
      { role: 'caller', text: 'get me a <human>', at: Date.now() - 1000 },
    ],
    order: {
      pending: { lines: [{ sku: 'PV-100', qty: 4, description: 'ball valve' }] },
      placed: [],
      status: { state: 'shipped' },
    },
    summary: 'explicit: caller asked for a person',
    ...over,
  };
}

t.test('rep console in a headless Chromium', { skip, timeout: 90_000 }, async (t) => {
  const { chromium } = await import('playwright-core');
  const store = new ScreenPopStore();
  const rc = await startRepConsole({ store, port: 0, log: quiet });
  t.teardown(() => rc.close());

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  // the page must not reach anywhere but the console itself
  const foreign: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(rc.url)) foreign.push(r.url());
  });

  await page.goto(`${rc.url}/?ext=1001`, { waitUntil: 'domcontentloaded' });
  t.equal(await page.inputValue('#ext'), '1001', 'extension field filled from ?ext=');
  await page.waitForFunction(() => document.getElementById('conn')?.classList.contains('live'), undefined, {
    timeout: 10_000,
  });
  t.equal(await page.locator('#pops li').count(), 0, 'no pops yet');

  store.add(makePop('other-ext', { target: { name: 'Billing', extension: '2000' }, reason: 'not for this rep' }));
  const pop = store.add(makePop('p-1'));

  const reason = page.locator('#pop #pop-reason');
  await reason.waitFor({ timeout: 5000 });
  t.equal(await reason.textContent(), 'caller asked for a person during a reorder: "get me a <human>"', 'reason shown, as text');
  t.match(await page.locator('#pop-caller').textContent(), /Pat <b>Jones<\/b>.*\+15551230000/, 'caller name + phone');
  t.equal(await page.locator('#pop-caller b').count(), 0, 'markup in data is not rendered');
  t.match(await page.locator('#pop-account').textContent(), /Jones Plumbing.*88812.*gold/, 'account');
  const lines = await page.locator('#pop-transcript li').allTextContents();
  t.equal(lines.length, 3, 'one li per transcript line');
  t.match(lines[0], /agent.*Thanks for calling Acme/);
  t.match(lines[2], /caller.*get me a <human>/);
  t.equal(await page.locator('#pop-status').textContent(), 'ringing');
  t.match(await page.locator('#pop').textContent(), /PV-100/, 'order context');
  t.equal(await page.locator('#pops li').count(), 1, 'only this extension listed');
  t.match(await page.locator('#pops li').first().textContent(), /ringing/);

  store.update(pop.id, { status: 'connected', statusReason: 'rep answered' });
  await page.waitForFunction(() => document.getElementById('pop-status')?.textContent === 'connected', undefined, {
    timeout: 5000,
  });
  t.pass('status changed to connected');
  t.equal(await page.locator('#pop-status-reason').textContent(), 'rep answered');
  t.match(await page.locator('#pops li').first().textContent(), /connected/, 'list badge updated');

  // a newer pop opens automatically
  store.add(makePop('p-2', { reason: 'second caller', caller: { phone: '+15550000002', name: 'Sam', language: 'en' } }));
  await page.waitForFunction(() => document.getElementById('pop-reason')?.textContent === 'second caller', undefined, {
    timeout: 5000,
  });
  t.equal(await page.locator('#pops li').count(), 2);

  // the server-rendered pop page (the X-Screen-Pop-Url target)
  await page.goto(rc.popUrl(pop.id), { waitUntil: 'domcontentloaded' });
  t.equal(await page.locator('#pop-reason').textContent(), pop.reason);
  t.equal(await page.locator('#pop-status').textContent(), 'connected');
  t.equal(await page.locator('#pop-transcript li').count(), 3);

  t.same(foreign, [], 'no requests outside the console');
  t.same(pageErrors, [], 'no page errors');
});

import { hashPassword, loginTokenHash } from '../../src/escalation/console/auth.ts';

t.test('rep console with logins in a headless Chromium', { skip, timeout: 120_000 }, async (t) => {
  const { chromium } = await import('playwright-core');
  const store = new ScreenPopStore();
  let clock = Date.now();
  const fast = { ln: 10, r: 8, p: 1 }; // cheap hashes keep the test quick; the config refuses these
  const linkSecret = 'desk-seven-link-secret-0123456789abcdef';
  const rc = await startRepConsole({
    store, port: 0, log: quiet, keepAliveMs: 200, now: () => clock, sessionMinutes: 60,
    reps: [
      { id: 'maria', name: 'Maria Chen', extensions: ['1001'], passwordHash: await hashPassword('maria-secret-1', fast) },
      { id: 'sam', name: 'Sam Ortiz', extensions: ['2000'], passwordHash: await hashPassword('sam-secret-22', fast) },
      { id: 'desk-7', name: 'Desk 7', extensions: ['3003'], loginTokenHash: loginTokenHash(linkSecret) },
    ],
  });
  t.teardown(() => rc.close());
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const foreign: string[] = [];
  // refused requests (401 / 404) are part of the test; anything else the console logs is an error
  const expected = /Failed to load resource: the server responded with a status of (401|404)/;
  const open = async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !expected.test(m.text())) pageErrors.push(m.text());
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(rc.url)) foreign.push(r.url());
    });
    return { ctx, page };
  };
  const live = { timeout: 10_000 };
  const mine = store.add(makePop('m-1', { caller: { phone: '+15551230000', name: 'Pat Jones', language: 'en' } }));
  const theirs = store.add(makePop('s-1', { target: { name: 'Sam Ortiz', extension: '2000' }, caller: { phone: '+15559990000', name: 'Other Caller', language: 'en' }, reason: 'for sam only' }));

  await t.test('login, own pops live, not another rep\'s, logout', async (t) => {
    const { ctx, page } = await open();
    await page.goto(`${rc.url}/`, { waitUntil: 'domcontentloaded' });
    t.match(page.url(), /\/login\?next=%2F$/, 'sent to the login page');
    t.equal(await page.locator('#login-notice').isVisible(), true);
    t.equal(await page.textContent('#login-notice'), 'Log in to see screen pops.');
    t.notOk((await page.content()).includes('Pat Jones'), 'no pop data on the login page');

    await page.fill('#rep', 'maria');
    await page.fill('#password', 'not-her-password');
    await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
    t.equal(await page.textContent('#login-notice'), 'Wrong rep id or password.');
    t.equal(await page.inputValue('#rep'), 'maria', 'rep id kept');

    await page.fill('#password', 'maria-secret-1');
    await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
    t.equal(new URL(page.url()).pathname, '/', 'back on the console');
    const [cookie] = await ctx.cookies();
    t.match(cookie, { name: 'va-console', httpOnly: true, sameSite: 'Strict', path: '/' }, 'HttpOnly SameSite=Strict session cookie');
    t.equal(await page.evaluate(() => document.cookie), '', 'the page script cannot read it');
    t.match(await page.textContent('#who'), /Maria Chen · 1001/);
    await page.waitForFunction(() => document.getElementById('conn')?.classList.contains('live'), undefined, live);

    await page.locator('#pops li').first().waitFor(live);
    t.equal(await page.textContent('#pop-reason'), mine.reason, 'her pop is shown');
    const fresh = store.add(makePop('m-2', { reason: 'a new caller for maria', caller: { phone: '+15550000002', name: 'Sam Newman', language: 'en' } }));
    store.add(makePop('s-2', { target: { name: 'Sam Ortiz', extension: '2000' }, reason: 'second for sam' }));
    await page.waitForFunction(() => document.getElementById('pop-reason')?.textContent === 'a new caller for maria', undefined, live);
    t.pass('a new pop arrives live over SSE');
    store.update(fresh.id, { status: 'connected', statusReason: 'rep answered' });
    await page.waitForFunction(() => document.getElementById('pop-status')?.textContent === 'connected', undefined, live);
    t.equal(await page.locator('#pops li').count(), 2, 'only her two pops');
    const body = await page.textContent('body');
    t.notOk(/Other Caller|for sam only|second for sam/.test(body ?? ''), "nothing of sam's pops");

    // a pop handed to another rep leaves her list
    store.update(fresh.id, { target: { name: 'Sam Ortiz', extension: '2000' } });
    await page.waitForFunction(() => document.querySelectorAll('#pops li').length === 1, undefined, live);
    t.pass('a re-targeted pop is removed');

    // another rep's pop, by URL or API: 404, not the data
    const api = await page.evaluate(async (id) => { const r = await fetch('/api/pops/' + id); return { status: r.status, body: await r.text() }; }, theirs.id);
    t.equal(api.status, 404);
    t.notOk(api.body.includes('Other Caller'));
    await page.goto(`${rc.url}/pops/${theirs.id}`, { waitUntil: 'domcontentloaded' });
    t.match(await page.textContent('#pop'), /not \(or no longer\) known/, "another rep's pop page is a 404");
    t.notOk((await page.content()).includes('Other Caller'));
    await page.goto(`${rc.url}/pops/${mine.id}`, { waitUntil: 'domcontentloaded' });
    t.equal(await page.textContent('#pop-reason'), mine.reason, 'her own pop page');

    await page.goto(`${rc.url}/`, { waitUntil: 'domcontentloaded' });
    await Promise.all([page.waitForNavigation(), page.click('#logout')]);
    t.match(page.url(), /\/login\?out=1$/);
    t.equal(await page.textContent('#login-notice'), 'You are logged out.');
    t.same(await ctx.cookies(), [], 'cookie gone');
    await page.goto(`${rc.url}/?ext=1001`, { waitUntil: 'domcontentloaded' });
    t.match(page.url(), /\/login\?next=/, 'the console needs a login again');
    await ctx.close();
  });

  await t.test('an expired session goes back to the login page', async (t) => {
    const { ctx, page } = await open();
    await page.goto(`${rc.url}/login`, { waitUntil: 'domcontentloaded' });
    await page.fill('#rep', 'sam');
    await page.fill('#password', 'sam-secret-22');
    await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
    await page.waitForFunction(() => document.getElementById('conn')?.classList.contains('live'), undefined, live);
    t.match(await page.textContent('#pops'), /for sam only/);
    clock += 61 * 60_000;
    await page.waitForURL(/\/login\?next=%2F$/, live);
    t.pass('stream ended with the session; the page went to the login');
    clock -= 61 * 60_000;
    await ctx.close();
  });

  await t.test('a screen-pop link opens one pop without a login; expired or forged ones do not', async (t) => {
    const { ctx, page } = await open();
    const link = rc.popLink(mine.id);
    await page.goto(link, { waitUntil: 'domcontentloaded' });
    t.equal(await page.textContent('#pop-reason'), mine.reason, 'the pop, without a login');
    t.match(await page.textContent('#access'), /Opened with a screen-pop link, valid until/);
    await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', undefined, live);
    store.update(mine.id, { status: 'connected', statusReason: 'rep answered' });
    await page.waitForFunction(() => document.getElementById('pop-status')?.textContent === 'connected', undefined, live);
    t.pass('its status follows live');
    t.same(await ctx.cookies(), [], 'no session from a link');

    const t0 = new URL(link).searchParams.get('t')!;
    await page.goto(`${rc.url}/pops/${theirs.id}?t=${t0}`, { waitUntil: 'domcontentloaded' });
    t.match(page.url(), /\/login\?next=%2Fpops%2Fs-1$/, "the token does not open another pop");
    await page.goto(`${rc.url}/?t=${t0}`, { waitUntil: 'domcontentloaded' });
    t.match(page.url(), /\/login\?/, 'nor the console');

    await page.goto(rc.popLink(mine.id, -1000), { waitUntil: 'domcontentloaded' });
    t.match(page.url(), /\/login\?next=%2Fpops%2Fm-1&expired=1$/, 'an expired link → login');
    t.equal(await page.textContent('#login-notice'), 'That screen-pop link has expired. Log in to see the pop.');
    t.notOk((await page.content()).includes('Pat Jones'));
    const [exp, sig] = t0.split('.') as [string, string];
    await page.goto(`${rc.url}/pops/${mine.id}?t=${exp}.${sig.slice(1)}x`, { waitUntil: 'domcontentloaded' });
    t.match(page.url(), /\/login\?next=%2Fpops%2Fm-1$/, 'a forged link → login');
    // ... and after logging in, the rep lands on the pop
    await page.fill('#rep', 'maria');
    await page.fill('#password', 'maria-secret-1');
    await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
    t.equal(new URL(page.url()).pathname, '/pops/m-1');
    t.equal(await page.textContent('#pop-reason'), mine.reason, 'the pop after the login');
    await ctx.close();
  });

  await t.test('a per-rep login link', async (t) => {
    const { ctx, page } = await open();
    await page.goto(`${rc.url}/login#rep=desk-7&token=${linkSecret}`);
    await page.waitForURL(`${rc.url}/`, live);
    t.match(await page.textContent('#who'), /Desk 7 · 3003/, 'logged in by the link');
    await ctx.close();
  });

  t.same(foreign, [], 'no requests outside the console');
  t.same(pageErrors, [], 'no page errors');
});
