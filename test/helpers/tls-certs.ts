/**
 * Test certificates for SIP over TLS, made with the `openssl` CLI (Debian `openssl`) in a
 * fresh temporary folder: a CA, a server certificate it signs (SAN 127.0.0.1, ::1, localhost,
 * sip.test), a client certificate it signs (mutual TLS), a self-signed "rogue" certificate
 * no one trusts, and a key that belongs to nothing (key-mismatch errors).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  /** CA certificate (PEM file) and its key. */
  ca: string;
  caKey: string;
  /** Server certificate signed by the CA, and its key. */
  cert: string;
  key: string;
  /** Client certificate signed by the CA, and its key. */
  clientCert: string;
  clientKey: string;
  /** Self-signed certificate (not from the CA) and its key. */
  rogueCert: string;
  rogueKey: string;
  /** A private key that matches none of the certificates. */
  otherKey: string;
  /** File contents, for in-process TLS options. */
  pem(file: string): Buffer;
}

/** Whether the `openssl` CLI is on PATH. */
export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ossl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** EC P-256 keys: fast to make, accepted by Node and baresip's OpenSSL alike. */
function newKey(dir: string, name: string): string {
  ossl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name]);
  return join(dir, name);
}

function signed(dir: string, name: string, cn: string, ext: string): { cert: string; key: string } {
  const key = newKey(dir, `${name}.key`);
  ossl(dir, ['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
  ossl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  return { cert: join(dir, `${name}.pem`), key };
}

/** Make the whole set (a few hundred ms). */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'sip-tls-'));
  const caKey = newKey(dir, 'ca.key');
  ossl(dir, ['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=voice-agent test CA', '-days', '2', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem']);
  const server = signed(dir, 'server', 'sip.test',
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:sip.test\nextendedKeyUsage=serverAuth,clientAuth');
  const client = signed(dir, 'client', 'rep-phone-2101', 'extendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:rep.test');
  const rogueKey = newKey(dir, 'rogue.key');
  ossl(dir, ['req', '-x509', '-new', '-key', rogueKey, '-subj', '/CN=rogue', '-days', '2',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-out', 'rogue.pem']);
  const otherKey = newKey(dir, 'other.key');
  return {
    dir, ca: join(dir, 'ca.pem'), caKey, cert: server.cert, key: server.key,
    clientCert: client.cert, clientKey: client.key, rogueCert: join(dir, 'rogue.pem'), rogueKey, otherKey,
    pem: (f) => readFileSync(f),
  };
}
