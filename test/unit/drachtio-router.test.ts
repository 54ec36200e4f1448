/**
 * The drachtio-server request handler (src/sip/drachtio-router.ts): node choice, probing of the
 * nodes' /readyz and /metrics, the JSON drachtio-server reads, and its command line.
 */
import t from 'tap';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodePicker, activeCallsFrom, startDrachtioRouter } from '../../src/sip/drachtio-router.ts';
import { parseRouterArgs } from '../../src/sip/drachtio-router-cli.ts';
import { setLogLevel } from '../../src/ops/log.ts';

setLogLevel('silent');

t.test('activeCallsFrom sums voice_agent_calls_active over tenants', async (t) => {
  const text = [
    '# HELP voice_agent_calls_active Calls answered and not yet ended, per tenant',
    '# TYPE voice_agent_calls_active gauge',
    'voice_agent_calls_active{tenant="acme"} 3',
    'voice_agent_calls_active{tenant="globex"} 2',
    'voice_agent_calls_active_other 99',
  ].join('\n');
  t.equal(activeCallsFrom(text), 5);
  t.equal(activeCallsFrom(''), 0);
});

t.test('least-calls: fewest live calls plus calls routed since the scrape; only nodes up', async (t) => {
  const p = new NodePicker([{ uri: 'a:1', opsUrl: 'http://a' }, { uri: 'b:2', opsUrl: 'http://b' }, { uri: 'c:3', opsUrl: 'http://c' }]);
  t.same(p.answer(), { action: 'reject', data: { status: 503, reason: 'No voice-agent node available' } }, 'nothing probed yet: reject 503');
  p.update(0, 'up', undefined, 4);
  p.update(1, 'up', undefined, 1);
  p.update(2, 'draining', 'FAIL draining', 0);
  const picks = Array.from({ length: 5 }, () => p.pick()?.uri);
  // b has 1, a has 4: b, b, b (now 4), then a and b alternate at equal load
  t.same(picks.slice(0, 3), ['b:2', 'b:2', 'b:2']);
  t.same(new Set(picks.slice(3)), new Set(['a:1', 'b:2']));
  t.notOk(picks.includes('c:3'), 'the draining node never picked');
  p.update(1, 'up', undefined, 0);
  t.equal(p.nodes[1]!.routedSinceProbe, 0, 'a scrape resets the calls routed since');
  p.update(0, 'down', 'ECONNREFUSED');
  p.update(1, 'down', 'ECONNREFUSED');
  t.equal(p.answer().action, 'reject', 'all down: reject');
});

t.test('round-robin turns over the nodes that are up', async (t) => {
  const p = new NodePicker([{ uri: 'a:1', opsUrl: 'http://a' }, { uri: 'b:2', opsUrl: 'http://b' }, { uri: 'c:3', opsUrl: 'http://c' }], 'round-robin');
  for (const i of [0, 1, 2]) p.update(i, 'up');
  t.same(Array.from({ length: 6 }, () => p.pick()?.uri), ['a:1', 'b:2', 'c:3', 'a:1', 'b:2', 'c:3']);
  p.update(1, 'not-ready', 'FAIL redis');
  t.same(Array.from({ length: 4 }, () => p.pick()?.uri), ['a:1', 'c:3', 'a:1', 'c:3']);
});

/** A fake voice-agent ops listener whose /readyz and /metrics the test sets. */
async function fakeNode(): Promise<{ url: string; ready: number; body: string; calls: number; server: Server }> {
  const n = { url: '', ready: 200, body: 'ok draining\n', calls: 0, server: undefined as unknown as Server };
  n.server = createServer((req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(n.ready);
      res.end(n.body);
    } else if (req.url === '/metrics') {
      res.writeHead(200);
      res.end(`voice_agent_calls_active{tenant="demo"} ${n.calls}\n`);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => n.server.listen(0, '127.0.0.1', r));
  n.url = `http://127.0.0.1:${(n.server.address() as AddressInfo).port}`;
  return n;
}

t.test('the HTTP request handler: probes, routes as drachtio-server asks, rejects when none is ready', async (t) => {
  const a = await fakeNode();
  const b = await fakeNode();
  a.calls = 5;
  const router = await startDrachtioRouter({
    port: 0, probeIntervalMs: 60000,
    nodes: [{ uri: '127.0.0.1:9031', opsUrl: a.url }, { uri: '127.0.0.1:9032;transport=tcp', opsUrl: b.url }],
  });
  t.teardown(async () => {
    await router.close();
    a.server.close();
    b.server.close();
  });
  // drachtio-server appends "/" and the query to the configured URL
  const ask = async (): Promise<unknown> => (await fetch(`${router.url}/?method=INVITE&domain=127.0.0.1&protocol=udp&source_address=127.0.0.1&fromUser=alice&toUser=18005550100&uriUser=18005550100&contentType=application%2Fsdp&uri=sip%3A18005550100%40127.0.0.1`)).json();
  t.same(await ask(), { action: 'route', data: { uri: '127.0.0.1:9032;transport=tcp' } }, 'fewest calls: node b');
  a.ready = 503;
  a.body = 'FAIL draining: the node is draining (SIGTERM); new calls go elsewhere\n';
  b.ready = 503;
  b.body = 'ok draining\nFAIL redis: connect ECONNREFUSED\n';
  await router.probeAll();
  t.same(router.picker.nodes.map((n) => n.state), ['draining', 'not-ready']);
  t.same(await ask(), { action: 'reject', data: { status: 503, reason: 'No voice-agent node available' } });
  a.ready = 200;
  b.server.close();
  b.server.closeAllConnections();
  await router.probeAll();
  t.same(router.picker.nodes.map((n) => n.state), ['up', 'down']);
  t.same(await ask(), { action: 'route', data: { uri: '127.0.0.1:9031' } });
  const status = await (await fetch(`${router.url}/status`)).json() as { nodes: Array<{ uri: string; routed: number }> };
  t.same(status.nodes.map((n) => n.routed), [1, 1], '/status counts routed requests');
  const bad = await fetch(`${router.url}/anything`);
  t.equal(bad.status, 400, 'a request without method= is not drachtio-server\'s');
});

t.test('off loopback the request handler needs basic auth, and checks it', async (t) => {
  await t.rejects(startDrachtioRouter({ host: '0.0.0.0', port: 0, nodes: [{ uri: 'a:1', opsUrl: 'http://127.0.0.1:1' }] }), /off loopback: give --auth/);
  const router = await startDrachtioRouter({ port: 0, auth: 'drachtio:s3cret', probeTimeoutMs: 200, nodes: [{ uri: 'a:1', opsUrl: 'http://127.0.0.1:1' }] });
  t.teardown(() => router.close());
  t.equal((await fetch(`${router.url}/?method=INVITE`)).status, 401);
  const ok = await fetch(`${router.url}/?method=INVITE`, { headers: { Authorization: `Basic ${Buffer.from('drachtio:s3cret').toString('base64')}` } });
  t.same(await ok.json(), { action: 'reject', data: { status: 503, reason: 'No voice-agent node available' } });
});

t.test('command line and environment', async (t) => {
  t.same(parseRouterArgs(['--node', '127.0.0.1:9031,http://127.0.0.1:9465', '--node=10.0.0.2:9031;transport=tls,https://10.0.0.2:9465', '--listen', '[::1]:9080', '--policy', 'round-robin', '--probe-ms', '500'], {}), {
    nodes: [{ uri: '127.0.0.1:9031', opsUrl: 'http://127.0.0.1:9465' }, { uri: '10.0.0.2:9031;transport=tls', opsUrl: 'https://10.0.0.2:9465' }],
    host: '::1', port: 9080, policy: 'round-robin', probeIntervalMs: 500,
  });
  t.same(parseRouterArgs([], { DRACHTIO_ROUTER_NODES: 'a:1,http://a:2  b:1,http://b:2', DRACHTIO_ROUTER_AUTH: 'u:p', OPS_TOKEN: 'tok' }), {
    nodes: [{ uri: 'a:1', opsUrl: 'http://a:2' }, { uri: 'b:1', opsUrl: 'http://b:2' }], auth: 'u:p', opsToken: 'tok',
  });
  const err = (args: string[], env: NodeJS.ProcessEnv, re: RegExp): void => {
    t.throws(() => parseRouterArgs(args, env), { name: 'RouterArgError', message: re });
  };
  err([], {}, /--node: give at least one node/);
  err(['--node', '127.0.0.1'], {}, /--node: "127.0.0.1" must be HOST:PORT/);
  err(['--node', '127.0.0.1:9031,ftp://x'], {}, /is not an http\(s\) URL/);
  err([], { DRACHTIO_ROUTER_NODES: 'x' }, /^DRACHTIO_ROUTER_NODES: /);
  err(['--node', 'a:1,http://a', '--policy', 'random'], {}, /--policy: must be least-calls or round-robin/);
  err(['--node', 'a:1,http://a'], { DRACHTIO_ROUTER_PROBE_MS: '0' }, /DRACHTIO_ROUTER_PROBE_MS: must be an integer/);
  err(['--node', 'a:1,http://a', '--listen', 'nowhere'], {}, /--listen: "nowhere" must be HOST:PORT/);
  err(['--bogus'], {}, /unknown argument "--bogus"/);
});
