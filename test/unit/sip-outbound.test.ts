/**
 * Outbound drachtio connections on the app side (src/sip/app.ts, DRACHTIO_MODE=outbound): the
 * app listens; a connection from drachtio-server gets the app's `authenticate` with the shared
 * secret (drachtio wire framing `<len>#<payload>`); the node counts as connected (readiness)
 * while it listens; a busy port is a clear start-up error. The whole flow against a real
 * drachtio-server is test/conformance/multi-app.test.ts.
 */
import t from 'tap';
import { connect } from 'node:net';
import { VoiceApp } from '../../src/sip/app.ts';
import { defaultConfig, type Config } from '../../src/config.ts';
import { parseTenants } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { RANGES, freePort } from '../helpers/ports.ts';

setLogLevel('silent');

const TENANTS = parseTenants({ tenants: [{ id: 'acme', name: 'Acme', dids: ['+18005550100'], greeting: 'Hello.' }] }, 'test');
const engine = { activeSessions: 0, createSession: () => { throw new Error('no media in this test'); } };

function outboundApp(port: number): VoiceApp {
  const base = defaultConfig();
  const config: Config = { ...base, edge: 'drachtio', drachtio: { ...base.drachtio, secret: 's3cret', mode: 'outbound', listenAddress: '127.0.0.1', listenPort: port } };
  return new VoiceApp({ config, tenants: TENANTS, engine: engine as never, synthesize: async () => new Int16Array(1) });
}

t.test('listens, and authenticates each connection drachtio-server opens', async (t) => {
  const port = await freePort(RANGES.control, 'tcp');
  const app = outboundApp(port);
  t.equal(app.isConnected, false);
  t.equal(await app.connect(), `127.0.0.1:${port}`);
  t.equal(app.isConnected, true, 'ready while listening');
  const sock = connect(port, '127.0.0.1');
  const first = await new Promise<string>((resolve, reject) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      const m = /^(\d+)#/.exec(buf);
      if (m && buf.length >= m[0].length + Number(m[1])) resolve(buf.slice(m[0].length, m[0].length + Number(m[1])));
    });
    sock.on('error', reject);
  });
  t.match(first, /^[0-9a-f-]+\|authenticate\|s3cret\|/, 'the app authenticates with the shared secret');
  sock.destroy();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(app.isConnected, true, 'a per-request connection closing does not make the node unready');
  await app.shutdown(500);
  t.equal(app.isConnected, false, 'not ready once shut down');
});

t.test('a busy listen port is a start-up error naming the address', async (t) => {
  const port = await freePort(RANGES.control, 'tcp');
  const a = outboundApp(port);
  await a.connect();
  const b = outboundApp(port);
  await t.rejects(b.connect(), new RegExp(`could not listen for drachtio-server outbound connections on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
  await a.shutdown(500);
});
