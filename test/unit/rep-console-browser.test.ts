import t from 'tap';
import { existsSync } from 'node:fs';
import { ScreenPopStore, type ScreenPop } from '../../src/escalation/screen-pop.ts';
import { startRepConsole } from '../../src/escalation/console/server.ts';
import type { Logger } from '../../src/ops/log.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (apt-get install chromium)`;
if (skip) console.log(`# skipping rep console browser test: ${skip}`);

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
