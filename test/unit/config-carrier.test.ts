/**
 * Carrier-facing SIP settings of the config: session timers (RFC 4028), early media (global
 * default and per trunk).
 */
import t from 'tap';
import { configScratch } from './config-helpers.ts';

const { file, load } = configScratch('config-carrier-');

t.test('session timer: defaults, file, env, errors', async (t) => {
  t.same(load().sessionTimer, { enabled: true, interval: 1800, minSE: 90 }, 'on, 1800 s, Min-SE 90');
  const f = file('sessionTimer: { enabled: false, interval: 900, minSE: 120 }\n');
  t.same(load({}, ['--config', f]).sessionTimer, { enabled: false, interval: 900, minSE: 120 });
  t.same(load({ SESSION_TIMER: 'on', SESSION_EXPIRES: '600', SESSION_MIN_SE: '300' }, ['--config', f]).sessionTimer,
    { enabled: true, interval: 600, minSE: 300 }, 'env over file');
  t.equal(load({ SESSION_TIMER: 'OFF' }).sessionTimer.enabled, false);
  t.equal(load({ SESSION_TIMER: 'true' }).sessionTimer.enabled, true);
  t.same(load({ SESSION_EXPIRES: '6', SESSION_MIN_SE: '2' }).sessionTimer, { enabled: true, interval: 6, minSE: 2 }, 'short values for tests');
  t.throws(() => load({ SESSION_TIMER: 'maybe' }), /environment: SESSION_TIMER: must be on or off/);
  t.throws(() => load({ SESSION_EXPIRES: '0' }), /SESSION_EXPIRES: must be an integer 1-86400/);
  t.throws(() => load({ SESSION_EXPIRES: '60' }), /sessionTimer\.interval: must not be below sessionTimer\.minSE \(60 < 90\)/);
  t.throws(() => load({}, ['--config', file('sessionTimer: { refresher: uac }\n')]), /sessionTimer\.refresher: unknown key/);
});

t.test('early media: global default, per trunk, env', async (t) => {
  t.equal(load().earlyMedia, false, 'off by default');
  t.equal(load({ EARLY_MEDIA: 'on' }).earlyMedia, true);
  const f = file(`
earlyMedia: true
trunks:
  - { name: carrier-a, sources: [203.0.113.0/24], earlyMedia: false }
  - { name: carrier-b, sources: [198.51.100.7] }
`);
  const c = load({}, ['--config', f]);
  t.equal(c.earlyMedia, true);
  t.equal(c.trunks[0]!.earlyMedia, false, 'a trunk may turn it off');
  t.equal(c.trunks[1]!.earlyMedia, undefined, 'unset: the global default applies');
  t.equal(load({ TRUNKS: '[{name: x, sources: [127.0.0.1], earlyMedia: yes}]' }).trunks[0]!.earlyMedia, true, 'TRUNKS env');
  t.throws(() => load({ EARLY_MEDIA: 'sometimes' }), /EARLY_MEDIA: must be on or off/);
  t.throws(() => load({ TRUNKS: '[{name: x, sources: [127.0.0.1], earlyMedia: 3}]' }), /TRUNKS\[0\]\.earlyMedia: must be on or off/);
});
