import t from 'tap';
import { join } from 'node:path';
import { ConfigError, DEFAULT_TENANTS_FILE, describeSip, configFileFromArgs } from '../../src/config.ts';
import { configScratch } from './config-helpers.ts';

const { dir, file, load } = configScratch('config-test-');

t.test('embedded defaults', async (t) => {
  const c = load();
  t.same(c.sip, { address: '127.0.0.1', port: 5060, transports: ['udp', 'tcp'], t1Ms: 500 });
  t.equal(c.edge, 'builtin');
  t.same(c.drachtio, { host: '127.0.0.1', port: 9022, secret: 'cymru' });
  t.same(c.rtp, { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', portMin: 40000, portMax: 40999 });
  t.equal(c.tenantsFile, DEFAULT_TENANTS_FILE);
  t.equal(c.maxCallSeconds, 3600);
  t.equal(c.answerDelayMs, 0);
  t.equal(c.rtpTimeoutSeconds, 30);
  t.equal(c.logLevel, 'info');
  t.equal(c.configFile, undefined);
  t.equal(describeSip(c.sip), 'udp+tcp/127.0.0.1:5060');
});

t.test('file then env override, --config beats CONFIG_FILE', async (t) => {
  const f = file(`
sip: { address: 10.0.0.5, port: 5070, transports: [tcp] }
edge: drachtio
drachtio: { host: drachtio.internal, port: 9023, secret: s3cret }
rtp: { address: 10.0.0.5, portMin: 30000, portMax: 30999 }
tenantsFile: ./my-tenants.yaml
maxCallSeconds: 600
answerDelayMs: 250
rtpTimeoutSeconds: 0
logLevel: debug
`);
  const c = load({ CONFIG_FILE: '/nonexistent.yaml', SIP_PORT: '5080', RTP_PUBLIC_ADDRESS: '203.0.113.7' }, ['--config', f]);
  t.equal(c.configFile, f);
  t.same(c.sip, { address: '10.0.0.5', port: 5080, transports: ['tcp'], t1Ms: 500 });
  t.equal(c.edge, 'drachtio');
  t.same(c.drachtio, { host: 'drachtio.internal', port: 9023, secret: 's3cret' });
  t.same(c.rtp, { bindAddress: '10.0.0.5', publicAddress: '203.0.113.7', portMin: 30000, portMax: 30999 });
  t.equal(c.tenantsFile, join(dir, 'my-tenants.yaml'), 'relative to the config file');
  t.equal(c.maxCallSeconds, 600);
  t.equal(c.answerDelayMs, 250);
  t.equal(c.rtpTimeoutSeconds, 0);
  t.equal(c.logLevel, 'debug');
  t.equal(load({ CONFIG_FILE: f }).sip.port, 5070, 'CONFIG_FILE alone');
  t.equal(load({}, [`--config=${f}`]).sip.port, 5070, '--config=path');
});

t.test('env vars', async (t) => {
  const c = load({
    SIP_ADDRESS: '0.0.0.0', SIP_PORT: '0', SIP_TRANSPORTS: 'udp', EDGE: 'BUILTIN', DRACHTIO_HOST: '127.0.0.2',
    DRACHTIO_PORT: '0', DRACHTIO_SECRET: 'x', RTP_ADDRESS: '127.0.0.3', RTP_PORT_MIN: '24000', RTP_PORT_MAX: '24100',
    TENANTS_FILE: 'rel/t.yaml', MAX_CALL_SECONDS: '5', ANSWER_DELAY_MS: '500', RTP_TIMEOUT_SECONDS: '2', LOG_LEVEL: 'silent',
  });
  t.same(c.sip, { address: '0.0.0.0', port: 0, transports: ['udp'], t1Ms: 500 });
  t.equal(c.edge, 'builtin');
  t.same(c.drachtio, { host: '127.0.0.2', port: 0, secret: 'x' });
  t.same(c.rtp, { bindAddress: '127.0.0.3', publicAddress: '127.0.0.3', portMin: 24000, portMax: 24100 }, 'public follows bind');
  t.equal(c.tenantsFile, join(dir, 'rel/t.yaml'));
  t.equal(c.maxCallSeconds, 5);
  t.equal(c.answerDelayMs, 500);
  t.equal(c.rtpTimeoutSeconds, 2);
  t.equal(c.logLevel, 'silent');
  t.same(load({ SIP_TRANSPORTS: 'udp+tcp' }).sip.transports, ['udp', 'tcp']);
  t.same(load({ SIP_TRANSPORTS: 'tcp, udp' }).sip.transports, ['tcp', 'udp']);
  t.equal(load({ RTP_ADDRESS: '0.0.0.0' }).rtp.publicAddress, '127.0.0.1', 'wildcard bind advertises loopback unless told');
  t.equal(load({ SIP_PORT: '' }).sip.port, 5060, 'empty env = unset');
  t.equal(load({}).sip.t1Ms, 500, 'T1 500 ms by default');
  t.equal(load({ SIP_T1_MS: '100' }).sip.t1Ms, 100);
});

t.test('errors name the source and the field', async (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ SIP_PORT: 'abc' }, 'environment: SIP_PORT: must be an integer 0-65535, got "abc"'],
    [{ SIP_PORT: '70000' }, 'environment: SIP_PORT: must be an integer 0-65535, got "70000"'],
    [{ SIP_TRANSPORTS: 'udp,sctp' }, 'environment: SIP_TRANSPORTS: must be one of udp, tcp, got "sctp"'],
    [{ EDGE: 'kamailio' }, 'environment: EDGE: must be one of builtin, drachtio, got "kamailio"'],
    [{ RTP_PORT_MIN: '80' }, 'environment: RTP_PORT_MIN: must be an integer 1024-65535, got "80"'],
    [{ RTP_PORT_MIN: '41000' }, 'environment: rtp.portMin: must not exceed rtp.portMax (41000 > 40999)'],
    [{ LOG_LEVEL: 'verbose' }, 'environment: LOG_LEVEL: must be one of debug, info, warn, error, silent, got "verbose"'],
    [{ MAX_CALL_SECONDS: '-5' }, 'environment: MAX_CALL_SECONDS: must be an integer 0-604800, got "-5"'],
    [{ SIP_ADDRESS: 'not an address!' }, 'environment: SIP_ADDRESS: must be an IP address or host name, got "not an address!"'],
    [{ SIP_T1_MS: '10' }, 'environment: SIP_T1_MS: must be an integer 50-10000, got "10"'],
    [{ EDGE: 'drachtio', DRACHTIO_PORT: '9022', SIP_T1_MS: '250' }, "environment: sip.t1Ms: applies to the built-in edge only; with edge drachtio set drachtio-server's own SIP timers (got 250)"],
    [{ EDGE: 'drachtio', DRACHTIO_PORT: '0' }, 'environment: drachtio.port: must be set to the drachtio-server admin port when edge is drachtio (0 is only for the built-in edge)'],
  ];
  for (const [env, msg] of cases) t.throws(() => load(env), { name: 'ConfigError', message: msg }, msg);

  const fileCases: [string, string][] = [
    ['sip:\n  port: abc\n', 'sip.port: must be an integer 0-65535, got "abc"'],
    ['sip:\n  port: 5060.5\n', 'sip.port: must be an integer 0-65535, got 5060.5'],
    ['sip:\n  transports: [udp, ws]\n', 'sip.transports[1]: must be one of udp, tcp, got "ws"'],
    ['sip: 5060\n', 'sip: must be a mapping, got 5060'],
    ['sip:\n  prot: 5060\n', 'sip.prot: unknown key (expected one of address, port, transports, t1Ms, tls)'],
    ['rtp:\n  portMax: 99999\n', 'rtp.portMax: must be an integer 1024-65535, got 99999'],
    ['drachtio:\n  secret: ""\n', 'drachtio.secret: must be a non-empty string, got ""'],
    ['- a\n- b\n', 'must be a mapping, got a list'],
    ['handoff:\n  repUri: sip:1001@pbx\n', 'handoff.repUri: must be a SIP URI template containing {extension}, e.g. sip:{extension}@pbx.example.com, got "sip:1001@pbx"'],
    ['handoff:\n  ringSeconds: 0\n', 'handoff.ringSeconds: must be an integer 1-300, got 0'],
    ['console:\n  enabled: maybe\n', 'console.enabled: must be true or false, got "maybe"'],
  ];
  for (const [text, field] of fileCases) {
    const f = file(text);
    t.throws(() => load({}, ['--config', f]), { name: 'ConfigError', message: `${f}: ${field}` }, field);
  }
  const typo = file('rtpTimeout: 5\n');
  t.throws(() => load({}, ['--config', typo]), {
    name: 'ConfigError',
    message: new RegExp(`^${typo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: rtpTimeout: unknown key \\(expected one of sip, edge, drachtio, rtp, tenantsFile, maxCallSeconds, answerDelayMs, rtpTimeoutSeconds, logLevel, rtpengine, handoff, console(, \\w+)*\\)$`),
  }, 'unknown top-level key names the known ones');
});

t.test('file errors: missing, unreadable YAML, empty file', async (t) => {
  const missing = join(dir, 'missing.yaml');
  t.throws(() => load({ CONFIG_FILE: missing }), { message: `${missing}: cannot read file (ENOENT)` });
  const bad = file('sip: [\n');
  try {
    load({}, ['--config', bad]);
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    t.match((e as Error).message, `${bad}: invalid YAML: `);
  }
  const dup = file('edge: builtin\nedge: drachtio\n');
  t.throws(() => load({}, ['--config', dup]), { message: /invalid YAML: .*[Mm]ap keys must be unique/ });
  t.equal(load({}, ['--config', file('')]).sip.port, 5060, 'empty file = defaults');
  t.throws(() => configFileFromArgs(['--config']), { message: 'command line: --config: needs a file path' });
});

t.test('rtpengine anchor settings: off by default, env and file, errors', async (t) => {
  t.equal(load().rtpengine, null, 'off unless RTPENGINE_URL / rtpengine.url is set');
  t.equal(load({ RTPENGINE_TIMEOUT_MS: '900' }).rtpengine, null, 'settings without a URL leave it off');
  t.same(load({ RTPENGINE_URL: 'udp://127.0.0.1:22222' }).rtpengine, { url: 'udp://127.0.0.1:22222', timeoutMs: 1500, transcode: [], flags: [] });
  t.same(load({
    RTPENGINE_URL: 'udp://10.0.0.9:2223', RTPENGINE_TIMEOUT_MS: '700', RTPENGINE_TRANSCODE: 'PCMU, PCMA',
    RTPENGINE_DIRECTION: 'external,internal', RTPENGINE_FLAGS: 'SIP-source-address',
  }).rtpengine, {
    url: 'udp://10.0.0.9:2223', timeoutMs: 700, transcode: ['PCMU', 'PCMA'], direction: ['external', 'internal'], flags: ['SIP-source-address'],
  });
  const f = file('rtpengine:\n  url: udp://127.0.0.1:22222\n  timeoutMs: 800\n  transcode: [PCMU]\n  direction: [a, b]\n');
  t.same(load({}, ['--config', f]).rtpengine, { url: 'udp://127.0.0.1:22222', timeoutMs: 800, transcode: ['PCMU'], direction: ['a', 'b'], flags: [] });
  t.same(load({ RTPENGINE_TIMEOUT_MS: '300' }, ['--config', f]).rtpengine?.timeoutMs, 300, 'env overrides the file');
  t.equal(load({ RTPENGINE_URL: 'off' }, ['--config', f]).rtpengine, null, 'RTPENGINE_URL=off disables a file setting');
  t.throws(() => load({ RTPENGINE_URL: 'http://x:1' }), { name: 'ConfigError', message: 'environment: RTPENGINE_URL: must be udp://host:port (rtpengine listen-ng), got "http://x:1"' });
  t.throws(() => load({ RTPENGINE_URL: 'udp://x:1', RTPENGINE_TIMEOUT_MS: '0' }), { message: 'environment: RTPENGINE_TIMEOUT_MS: must be an integer 1-60000, got "0"' });
  t.throws(() => load({ RTPENGINE_URL: 'udp://x:1', RTPENGINE_DIRECTION: 'one' }), { message: /RTPENGINE_DIRECTION: expected two interface names/ });
  t.throws(() => load({}, ['--config', file('rtpengine:\n  uri: x\n')]), { message: /rtpengine\.uri: unknown key/ });
});

t.test('srtp: optional by default; file, env SRTP, per trunk; bad values named', async (t) => {
  t.equal(load().srtp, 'optional');
  const f = file(`
srtp: required
trunks:
  - name: legacy
    sources: [192.0.2.1]
    srtp: "off"
  - name: carrier
    sources: [192.0.2.2]
`);
  const c = load({}, ['--config', f]);
  t.equal(c.srtp, 'required');
  t.equal(c.trunks[0]!.srtp, 'off');
  t.notOk('srtp' in c.trunks[1]!, 'a trunk that does not say takes the global policy (src/sip/srtp-settings.ts)');
  t.equal(load({ SRTP: 'Off' }, ['--config', f]).srtp, 'off', 'env SRTP beats the file');
  t.throws(() => load({ SRTP: 'sometimes' }), { name: 'ConfigError', message: 'environment: SRTP: must be one of off, optional, required, got "sometimes"' });
  const bad = file('trunks:\n  - name: a\n    sources: [1.2.3.4]\n    srtp: yes\n');
  t.throws(() => load({}, ['--config', bad]), { name: 'ConfigError', message: `${bad}: trunks[0].srtp: must be one of off, optional, required, got "yes"` });
});

t.test('trunks and defaultCountry: none by default, file and env, country default, errors', async (t) => {
  const d = load();
  t.same(d.trunks, [], 'no trunks by default (loopback identity trusted, see src/sip/identity.ts)');
  t.equal(d.defaultCountry, 'US');

  const f = file(`
defaultCountry: gb
trunks:
  - name: carrier-a
    sources: [203.0.113.0/24, "2001:db8:5::/48", 198.51.100.7]
  - name: pbx
    sources: [10.1.2.3]
    trustIdentity: false
    country: de
`);
  const c = load({}, ['--config', f]);
  t.equal(c.defaultCountry, 'GB');
  t.same(c.trunks, [
    { name: 'carrier-a', sources: ['203.0.113.0/24', '2001:db8:5::/48', '198.51.100.7/32'], trustIdentity: true, country: 'GB' },
    { name: 'pbx', sources: ['10.1.2.3/32'], trustIdentity: false, country: 'DE' },
  ], 'trustIdentity defaults to true, country to defaultCountry, bare addresses become /32');
  t.equal(load({ DEFAULT_COUNTRY: 'fr' }, ['--config', f]).trunks[0]!.country, 'FR', 'an env default country applies to trunks that name none');

  const e = load({ TRUNKS: '[{"name": "sbc", "sources": ["::1", "127.0.0.1"], "country": "US"}]' });
  t.same(e.trunks, [{ name: 'sbc', sources: ['::1/128', '127.0.0.1/32'], trustIdentity: true, country: 'US' }], 'TRUNKS as JSON');
  t.same(load({ TRUNKS: '[{name: sbc, sources: 192.0.2.0/24}]' }).trunks[0]!.sources, ['192.0.2.0/24'], 'TRUNKS as YAML flow, sources as one string');

  const envCases: [Record<string, string>, string][] = [
    [{ DEFAULT_COUNTRY: 'USA' }, 'environment: DEFAULT_COUNTRY: must be an ISO 3166 alpha-2 country code with a telephone numbering plan (e.g. US, GB, DE), got "USA"'],
    [{ TRUNKS: '[{name: a, sources: [10.0.0.0/33]}]' }, 'environment: TRUNKS[0].sources[0]: must be an IPv4 or IPv6 address or CIDR (e.g. 203.0.113.0/24, 2001:db8::/32), got "10.0.0.0/33"'],
    [{ TRUNKS: '{name: a}' }, 'environment: TRUNKS: must be a list of trunks ({name, sources, trustIdentity, country, earlyMedia}), got a mapping'],
    [{ TRUNKS: '[{name: a, sources: [' }, /^environment: TRUNKS: must be a YAML\/JSON list of trunks/ as unknown as string],
  ];
  for (const [env, msg] of envCases) t.throws(() => load(env), { name: 'ConfigError', message: msg }, String(msg));

  const fileCases: [string, string][] = [
    ['trunks:\n  - name: a\n', 'trunks[0].sources: must be a list of IPv4/IPv6 CIDRs, got undefined'],
    ['trunks:\n  - name: a\n    sources: []\n', 'trunks[0].sources: must list at least one source address or CIDR'],
    ['trunks:\n  - name: a\n    sources: [1.2.3.4, nope]\n', 'trunks[0].sources[1]: must be an IPv4 or IPv6 address or CIDR (e.g. 203.0.113.0/24, 2001:db8::/32), got "nope"'],
    ['trunks:\n  - name: a\n    sources: [1.2.3.4]\n  - name: a\n    sources: [1.2.3.5]\n', 'trunks[1].name: duplicate trunk name "a" (also trunks[0])'],
    ['trunks:\n  - sources: [1.2.3.4]\n', 'trunks[0].name: must be a name of letters, digits, \'.\', \'_\' or \'-\' (at most 64), got undefined'],
    ['trunks:\n  - name: a\n    sources: [1.2.3.4]\n    trustIdentity: yes please\n', 'trunks[0].trustIdentity: must be true or false, got "yes please"'],
    ['trunks:\n  - name: a\n    sources: [1.2.3.4]\n    country: ZZ\n', 'trunks[0].country: must be an ISO 3166 alpha-2 country code with a telephone numbering plan (e.g. US, GB, DE), got "ZZ"'],
    ['trunks:\n  - name: a\n    sources: [1.2.3.4]\n    acl: [x]\n', 'trunks[0].acl: unknown key (expected one of name, sources, trustIdentity, country, earlyMedia, srtp, auth, dids, maxCalls, tenant)'],
    ['trunks: carrier\n', 'trunks: must be a list of trunks ({name, sources, trustIdentity, country, earlyMedia}), got "carrier"'],
  ];
  for (const [text, field] of fileCases) {
    const ff = file(text);
    t.throws(() => load({}, ['--config', ff]), { name: 'ConfigError', message: `${ff}: ${field}` }, field);
  }
});
