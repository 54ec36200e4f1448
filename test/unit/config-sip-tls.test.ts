/**
 * Config `sip.tls` and SIP_TLS_*: parsing, defaults, paths, and the start-up checks of the
 * PEM files (unreadable, not a certificate/key, key of another certificate), each naming the
 * source and the field.
 */
import t from 'tap';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, describeSip, sipTlsMaterial, ConfigError } from '../../src/config.ts';
import { haveOpenssl, makeTestCerts } from '../helpers/tls-certs.ts';
import { requireTool } from '../helpers/require.ts';

if (!haveOpenssl()) {
  requireTool(t, 'sip.tls config', false, 'openssl', 'openssl');
} else {
  const certs = makeTestCerts();
  const dir = mkdtempSync(join(tmpdir(), 'config-tls-'));
  t.teardown(() => {
    rmSync(certs.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  // copies next to the config file, to check relative paths
  copyFileSync(certs.cert, join(dir, 'sip.pem'));
  copyFileSync(certs.key, join(dir, 'sip.key'));
  copyFileSync(certs.ca, join(dir, 'ca.pem'));
  let n = 0;
  const file = (text: string): string => {
    const f = join(dir, `c${++n}.yaml`);
    writeFileSync(f, text);
    return f;
  };
  const load = (env: Record<string, string> = {}, argv: string[] = []) => loadConfig({ env, argv, cwd: certs.dir });
  const err = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    return 'no error';
  };

  t.test('off by default; describeSip unchanged', async (t) => {
    const c = load();
    t.equal(c.sip.tls, undefined);
    t.equal(describeSip(c.sip), 'udp+tcp/127.0.0.1:5060');
    t.equal(sipTlsMaterial(c), undefined);
  });

  t.test('YAML sip.tls: paths relative to the file, defaults, describeSip, material', async (t) => {
    const f = file('sip:\n  tls: { cert: sip.pem, key: ./sip.key }\n');
    const c = load({}, ['--config', f]);
    t.same(c.sip.tls, { cert: join(dir, 'sip.pem'), key: join(dir, 'sip.key'), port: 5061, verifyClient: false, rejectUnauthorized: true });
    t.equal(describeSip(c.sip), 'udp+tcp/127.0.0.1:5060,tls/127.0.0.1:5061');
    const m = sipTlsMaterial(c)!;
    t.match(m.cert.toString(), /BEGIN CERTIFICATE/);
    t.match(m.key.toString(), /PRIVATE KEY/);
    t.equal(m.ca, undefined);

    const full = load({}, ['--config', file('sip:\n  tls:\n    cert: sip.pem\n    key: sip.key\n    ca: ca.pem\n    port: 15061\n    verifyClient: true\n    rejectUnauthorized: false\n')]);
    t.same(full.sip.tls, {
      cert: join(dir, 'sip.pem'), key: join(dir, 'sip.key'), ca: join(dir, 'ca.pem'), port: 15061, verifyClient: true, rejectUnauthorized: false,
    });
    t.equal(describeSip(full.sip, 5080), 'udp+tcp/127.0.0.1:5080,tls/127.0.0.1:15061(mutual)');
    t.ok(sipTlsMaterial(full)!.ca, 'CA read');
  });

  t.test('environment: SIP_TLS_CERT/KEY/CA/PORT, relative to the working directory, over the file', async (t) => {
    const c = load({ SIP_TLS_CERT: 'server.pem', SIP_TLS_KEY: 'server.key', SIP_TLS_CA: 'ca.pem', SIP_TLS_PORT: '0' });
    t.same(c.sip.tls, { cert: certs.cert, key: certs.key, ca: certs.ca, port: 0, verifyClient: false, rejectUnauthorized: true });
    const f = file('sip:\n  tls: { cert: sip.pem, key: sip.key, port: 5062 }\n');
    const both = load({ SIP_TLS_PORT: '5063', SIP_TLS_KEY: certs.key }, ['--config', f]);
    t.equal(both.sip.tls?.port, 5063);
    t.equal(both.sip.tls?.key, certs.key);
    t.equal(both.sip.tls?.cert, join(dir, 'sip.pem'));
    t.equal(load({ SIP_TLS_CERT: '' }).sip.tls, undefined, 'empty = unset');
  });

  t.test('errors name the source and the field', async (t) => {
    const env = (e: Record<string, string>) => err(() => load(e));
    const yaml = (text: string) => {
      const f = file(text);
      return err(() => load({}, ['--config', f])).replace(`${f}: `, 'FILE: ');
    };
    t.equal(env({ SIP_TLS_CERT: certs.cert }), 'environment: SIP_TLS_CERT: SIP over TLS needs both a certificate and a key: SIP_TLS_KEY is not set');
    t.equal(yaml('sip:\n  tls: { key: sip.key }\n'), 'FILE: sip.tls.key: SIP over TLS needs both a certificate and a key: sip.tls.cert is not set');
    t.equal(yaml('sip:\n  tls: { port: 5061 }\n'), 'FILE: sip.tls.port: SIP over TLS needs both a certificate and a key: sip.tls.cert is not set');
    t.equal(env({ SIP_TLS_CERT: '/nonexistent/cert.pem', SIP_TLS_KEY: certs.key }),
      'environment: SIP_TLS_CERT: cannot read the certificate /nonexistent/cert.pem (ENOENT)');
    t.equal(yaml('sip:\n  tls: { cert: sip.pem, key: missing.key }\n'),
      `FILE: sip.tls.key: cannot read the private key ${join(dir, 'missing.key')} (ENOENT)`);
    t.equal(env({ SIP_TLS_CERT: certs.cert, SIP_TLS_KEY: certs.otherKey }),
      `environment: SIP_TLS_KEY: the private key ${certs.otherKey} does not match the certificate ${certs.cert} (CN=sip.test)`);
    t.equal(env({ SIP_TLS_CERT: certs.key, SIP_TLS_KEY: certs.key }).replace(/ \(.*\)$/, ''),
      `environment: SIP_TLS_CERT: ${certs.key} is not a PEM certificate`);
    t.equal(env({ SIP_TLS_CERT: certs.cert, SIP_TLS_KEY: certs.cert }).replace(/ \(.*\)$/, ''),
      `environment: SIP_TLS_KEY: ${certs.cert} is not a PEM private key`);
    t.equal(env({ SIP_TLS_CERT: certs.cert, SIP_TLS_KEY: certs.key, SIP_TLS_CA: certs.key }).replace(/ \(.*\)$/, ''),
      `environment: SIP_TLS_CA: ${certs.key} is not a PEM CA certificate`);
    t.equal(yaml('sip:\n  tls: { cert: sip.pem, key: sip.key, verifyClient: true }\n'),
      'FILE: sip.tls.verifyClient: needs sip.tls.ca (SIP_TLS_CA): the CA that signs the client certificates');
    t.equal(env({ SIP_TLS_CERT: certs.cert, SIP_TLS_KEY: certs.key, SIP_TLS_PORT: '70000' }), 'environment: SIP_TLS_PORT: must be an integer 0-65535, got "70000"');
    t.equal(yaml('sip:\n  tls: { cert: sip.pem, key: sip.key, verify: true }\n'),
      'FILE: sip.tls.verify: unknown key (expected one of cert, key, ca, port, verifyClient, rejectUnauthorized)');
    t.equal(yaml('sip:\n  tls: { cert: sip.pem, key: sip.key, rejectUnauthorized: "no" }\n'),
      'FILE: sip.tls.rejectUnauthorized: must be true or false, got "no"');
    t.equal(yaml('sip:\n  tls: sip.pem\n'), 'FILE: sip.tls: must be a mapping (cert, key, ca, port, verifyClient, rejectUnauthorized), got "sip.pem"');
  });

  t.test('edge: drachtio — the files are drachtio-server\'s business, not read here', async (t) => {
    const c = load({ EDGE: 'drachtio', SIP_TLS_CERT: '/nonexistent/cert.pem', SIP_TLS_KEY: '/nonexistent/key.pem' });
    t.equal(c.sip.tls?.cert, '/nonexistent/cert.pem');
  });
}
