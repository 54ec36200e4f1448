/**
 * drachtio connection settings (src/config.ts): inbound vs outbound connections, the outbound
 * listener, and what drachtio-server forces on the app (its Min-SE of 90 s).
 */
import t from 'tap';
import { configScratch } from './config-helpers.ts';

const { file, load } = configScratch('config-drachtio-');

t.test('inbound by default; outbound from the file or the environment', async (t) => {
  const c = load({ EDGE: 'drachtio' });
  t.equal(c.drachtio.mode ?? 'inbound', 'inbound');
  const f = file('edge: drachtio\ndrachtio: { mode: outbound, listenAddress: 127.0.0.1, listenPort: 9031, secret: s3cret }\n');
  const o = load({}, ['--config', f]);
  t.same([o.drachtio.mode, o.drachtio.listenAddress, o.drachtio.listenPort], ['outbound', '127.0.0.1', 9031]);
  const e = load({ EDGE: 'drachtio', DRACHTIO_MODE: 'outbound', DRACHTIO_LISTEN_ADDRESS: '127.0.0.2', DRACHTIO_LISTEN_PORT: '9032' });
  t.same([e.drachtio.mode, e.drachtio.listenAddress, e.drachtio.listenPort], ['outbound', '127.0.0.2', 9032]);
});

t.test('bad values name the field', async (t) => {
  t.throws(() => load({ EDGE: 'drachtio', DRACHTIO_MODE: 'sideways' }), { name: 'ConfigError', message: /DRACHTIO_MODE/ });
  t.throws(() => load({ EDGE: 'drachtio', DRACHTIO_LISTEN_PORT: '0' }), { name: 'ConfigError', message: /DRACHTIO_LISTEN_PORT/ });
  const f = file('edge: drachtio\ndrachtio: { mode: outbound, listenPort: 70000 }\n');
  t.throws(() => load({}, ['--config', f]), { name: 'ConfigError', message: `${f}: drachtio.listenPort` });
  t.throws(() => load({ DRACHTIO_MODE: 'outbound' }), { name: 'ConfigError', message: /drachtio\.mode: outbound is for a drachtio-server edge/ }, 'the built-in edge takes inbound connections only');
});

t.test('the default secret is refused when the outbound listener leaves loopback', async (t) => {
  t.throws(() => load({ EDGE: 'drachtio', DRACHTIO_MODE: 'outbound', DRACHTIO_LISTEN_ADDRESS: '0.0.0.0' }), { name: 'ConfigError', message: /drachtio\.secret: .*0\.0\.0\.0/ });
  t.equal(load({ EDGE: 'drachtio', DRACHTIO_MODE: 'outbound', DRACHTIO_LISTEN_ADDRESS: '0.0.0.0', DRACHTIO_SECRET: 's3cret' }).drachtio.listenAddress, '0.0.0.0');
});

t.test('behind drachtio-server the session timer minimum is at least its 90 s', async (t) => {
  t.throws(() => load({ EDGE: 'drachtio', SESSION_MIN_SE: '30' }), { name: 'ConfigError', message: /sessionTimer\.minSE: must be at least 90 with edge drachtio/ });
  t.equal(load({ EDGE: 'drachtio', SESSION_MIN_SE: '90' }).sessionTimer.minSE, 90);
  t.equal(load({ SESSION_MIN_SE: '2' }).sessionTimer.minSE, 2, 'the built-in edge takes any minimum (tests)');
});
