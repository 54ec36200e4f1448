/**
 * The drachtio-srf app in-process against the built-in SIP edge, with a fake media engine
 * (no native addon needed): OPTIONS, INVITE → 200, 488 paths, unknown number, CANCEL while
 * ringing, shutdown BYE, and that every media session is closed exactly once.
 */
import t from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { SipEdge } from '../../src/sip-edge/index.ts';
import { VoiceApp, effectiveMaxCallSeconds, type VoiceAppOptions } from '../../src/sip/app.ts';
import type { RtpengineAnchor } from '../../src/media/rtpengine/index.ts';
import { defaultConfig, type Config } from '../../src/config.ts';
import { parseTenants, type TenantDirectory } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import type { Call } from '../../src/call/call.ts';
import { CrmErpStore } from '../../src/crm-erp/index.ts';

setLogLevel(process.env.TEST_LOG === '1' ? 'debug' : 'silent');

class FakeSession extends EventEmitter {
  static all: FakeSession[] = [];
  localAddress = '127.0.0.1';
  localPort: number;
  closed = 0;
  played = 0;
  constructor(readonly opts: { codec: 'PCMU' | 'PCMA' | 'opus'; payloadType: number; telephoneEventPayloadType?: number; remote?: { address: string; port: number }; fmtp?: string; srtp?: { suite: string; localKey: Uint8Array; remoteKey: Uint8Array } }) {
    super();
    this.localPort = 24000 + FakeSession.all.length * 2;
    FakeSession.all.push(this);
  }
  remotes: [string, number][] = [];
  codecs: [string, number][] = [];
  setRemote(a: string, p: number): void { this.remotes.push([a, p]); }
  directions: string[] = [];
  setCodec(c: string, pt: number): void { this.codecs.push([c, pt]); }
  setDirection(d: string): void { this.directions.push(d); }
  play(): void { this.played++; }
  flush(): void {}
  stats() { return { packetsIn: 0, packetsOut: 0, lastRxAgoMs: 0 }; }
  close(): void { this.closed++; }
}
const engine = {
  get activeSessions() { return FakeSession.all.filter((s) => s.closed === 0).length; },
  createSession: (o: FakeSession['opts']) => new FakeSession(o),
};

interface SipResponse { status: number; reason: string; headers: Map<string, string>; body: string; raw: string }

/** A tiny UDP SIP UA for driving the app. */
class TestUa {
  private sock!: Socket;
  port = 0;
  private waiters: { pred: (r: SipResponse | SipReq) => boolean; resolve: (r: any) => void }[] = [];
  readonly received: (SipResponse | SipReq)[] = [];
  constructor(readonly target: number) {}
  async open(): Promise<void> {
    this.sock = createSocket('udp4');
    this.sock.on('message', (m) => this.onMessage(m.toString()));
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.port = this.sock.address().port;
  }
  close(): void { this.sock.close(); }
  send(text: string): void { this.sock.send(text.replace(/\r?\n/g, '\r\n'), this.target, '127.0.0.1'); }
  private onMessage(text: string): void {
    const [head, body = ''] = text.split('\r\n\r\n');
    const lines = head!.split('\r\n');
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      headers.set(k, headers.has(k) ? `${headers.get(k)}, ${l.slice(i + 1).trim()}` : l.slice(i + 1).trim());
    }
    const m = /^SIP\/2\.0 (\d{3}) (.*)$/.exec(lines[0]!);
    const msg: SipResponse | SipReq = m
      ? { status: Number(m[1]), reason: m[2]!, headers, body, raw: text }
      : { method: lines[0]!.split(' ')[0]!, headers, body, raw: text };
    this.received.push(msg);
    if ('method' in msg) {
      // answer in-dialog requests (BYE) with 200
      const h = (k: string) => headers.get(k) ?? '';
      this.send(`SIP/2.0 200 OK\nVia: ${h('via')}\nFrom: ${h('from')}\nTo: ${h('to')}\nCall-ID: ${h('call-id')}\nCSeq: ${h('cseq')}\nContent-Length: 0\n\n`);
    }
    for (const w of [...this.waiters]) {
      if (w.pred(msg)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  }
  wait<T extends SipResponse | SipReq>(pred: (r: SipResponse | SipReq) => boolean, ms = 3000): Promise<T> {
    const found = this.received.find(pred);
    if (found) return Promise.resolve(found as T);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      setTimeout(() => reject(new Error('timeout waiting for SIP message')), ms).unref();
    });
  }
  status(callId: string, code: number, method = 'INVITE'): Promise<SipResponse> {
    return this.wait((r) => 'status' in r && r.status === code && r.headers.get('call-id') === callId && (r.headers.get('cseq') ?? '').endsWith(method));
  }
}
interface SipReq { method: string; headers: Map<string, string>; body: string; raw: string }

const sdpOffer = (formats: string, rtpmaps: string[] = []) =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio 6000 RTP/AVP ${formats}`, ...rtpmaps].join('\r\n') + '\r\n';

let seq = 0;
function invite(ua: TestUa, opts: {
  user?: string; sdp?: string; callId?: string;
  /** Request-URI (default sip:<user>@edge) */ uri?: string;
  /** From URI (default sip:caller@ua) */ from?: string;
  /** To URI (default sip:<user>@edge) */ to?: string;
  /** extra header lines */ headers?: string[];
  /** Content-Type of a non-empty body (default application/sdp) */ contentType?: string;
} = {}): { callId: string; branch: string; fromTag: string } {
  const callId = opts.callId ?? `app-test-${++seq}-${Date.now()}`;
  const branch = `z9hG4bK-${seq}-${Math.random().toString(36).slice(2)}`;
  const fromTag = `ft${seq}`;
  const user = opts.user ?? '18005550100';
  const body = opts.sdp ?? '';
  const extra = (opts.headers ?? []).map((h) => `${h}\n`).join('');
  ua.send(`INVITE ${opts.uri ?? `sip:${user}@127.0.0.1:${ua.target}`} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${branch};rport
Max-Forwards: 70
From: <${opts.from ?? `sip:caller@127.0.0.1:${ua.port}`}>;tag=${fromTag}
To: <${opts.to ?? `sip:${user}@127.0.0.1:${ua.target}`}>
Call-ID: ${callId}
CSeq: 1 INVITE
Contact: <sip:caller@127.0.0.1:${ua.port}>
${extra}${body ? `Content-Type: ${opts.contentType ?? 'application/sdp'}\n` : ''}Content-Length: ${Buffer.byteLength(body.replace(/\r?\n/g, '\r\n'))}

${body}`);
  return { callId, branch, fromTag };
}

function ack(ua: TestUa, inv: { callId: string; branch: string; fromTag: string }, res: SipResponse, user = '18005550100'): void {
  const to = res.headers.get('to')!;
  const newBranch = res.status === 200 ? `${inv.branch}-ack` : inv.branch;
  ua.send(`ACK sip:${user}@127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${newBranch};rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1:${ua.port}>;tag=${inv.fromTag}
To: ${to}
Call-ID: ${inv.callId}
CSeq: 1 ACK
Content-Length: 0

`);
}

const TENANTS = parseTenants({
  tenants: [
    { id: 'acme', name: 'Acme', dids: ['18005550100'], greeting: 'Hello from Acme.', maxCallSeconds: 120 },
    { id: 'north', name: 'North', default: true, greeting: 'Hello from North.' },
  ],
}, 'test.yaml');

async function boot(over: Partial<Config> = {}, tenants: TenantDirectory = TENANTS, extra: Partial<VoiceAppOptions> = {}) {
  const edge = new SipEdge({ sip: { address: '127.0.0.1', port: 0, transports: ['udp'] }, control: { address: '127.0.0.1', port: 0, secret: 'cymru' } });
  await edge.start();
  const config: Config = { ...defaultConfig(), ...over };
  config.drachtio = { host: '127.0.0.1', port: edge.controlPort, secret: 'cymru' };
  config.sip = { ...config.sip, port: edge.sipPort };
  const synthesized: string[] = [];
  const app = new VoiceApp({
    config, tenants, engine,
    synthesize: async (text) => { synthesized.push(text); return new Int16Array(1600); },
    ...extra,
  });
  await app.connect();
  const ua = new TestUa(edge.sipPort);
  await ua.open();
  return {
    edge, app, ua, synthesized,
    async stop() {
      await app.shutdown(1000);
      ua.close();
      await edge.stop();
    },
  };
}

t.test('effectiveMaxCallSeconds: tenant can only lower the global limit', async (t) => {
  t.equal(effectiveMaxCallSeconds(3600, undefined), 3600);
  t.equal(effectiveMaxCallSeconds(3600, 60), 60);
  t.equal(effectiveMaxCallSeconds(2, 1800), 2);
  t.equal(effectiveMaxCallSeconds(0, 60), 60);
  t.equal(effectiveMaxCallSeconds(60, 0), 60);
});

t.test('app over the built-in edge', async (t) => {
  const env = await boot();
  t.teardown(() => env.stop());
  const { ua, app } = env;

  t.test('OPTIONS → 200 with Allow and Accept', async (t) => {
    ua.send(`OPTIONS sip:127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=z9hG4bK-opt1;rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1>;tag=o1
To: <sip:127.0.0.1>
Call-ID: opt-1
CSeq: 1 OPTIONS
Content-Length: 0

`);
    const r = await ua.status('opt-1', 200, 'OPTIONS');
    t.match(r.headers.get('allow'), /INVITE/);
    t.match(r.headers.get('allow'), /BYE/);
    t.equal(r.headers.get('accept'), 'application/sdp, multipart/mixed, multipart/alternative');
  });

  t.test('INVITE (PCMA, telephone-event) → 200, tenant by DID, greeting, caller BYE', async (t) => {
    const before = FakeSession.all.length;
    const inv = invite(ua, { sdp: sdpOffer('8 0 101', ['a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16']) });
    const r = await ua.status(inv.callId, 200);
    ack(ua, inv, r);
    t.match(r.body, /m=audio \d+ RTP\/AVP 8 101/);
    t.match(r.body, /a=fmtp:101 0-16/);
    const session = FakeSession.all[before]!;
    t.same(session.opts, { codec: 'PCMA', payloadType: 8, telephoneEventPayloadType: 101, remote: { address: '127.0.0.1', port: 6000 } });
    t.match(r.body, new RegExp(`m=audio ${session.localPort} `));
    const call = app.calls.get(inv.callId)!;
    t.ok(call, 'call registered');
    t.equal(call.tenant.id, 'acme');
    await new Promise((r) => setTimeout(r, 50));
    t.same(env.synthesized.slice(-1), ['Hello from Acme.']);
    t.equal(session.played, 1, 'greeting played');
    const ended = call.ended;
    const to = r.headers.get('to')!;
    ua.send(`BYE sip:18005550100@127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=z9hG4bK-bye-${inv.callId};rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1:${ua.port}>;tag=${inv.fromTag}
To: ${to}
Call-ID: ${inv.callId}
CSeq: 2 BYE
Content-Length: 0

`);
    await ua.status(inv.callId, 200, 'BYE');
    t.equal((await ended).reason, 'caller-bye');
    t.equal(session.closed, 1);
    t.notOk(app.calls.has(inv.callId));
  });

  t.test('unknown number → default tenant', async (t) => {
    const inv = invite(ua, { user: '999', sdp: sdpOffer('0') });
    const r = await ua.status(inv.callId, 200);
    ack(ua, inv, r, '999');
    t.equal(app.calls.get(inv.callId)?.tenant.id, 'north');
    await app.calls.get(inv.callId)!.hangup();
    await ua.wait((m) => 'method' in m && m.method === 'BYE' && m.headers.get('call-id') === inv.callId);
  });

  t.test('G.729 only → 488 with Reason and Warning, no media session', async (t) => {
    const before = FakeSession.all.length;
    const inv = invite(ua, { sdp: sdpOffer('18', ['a=rtpmap:18 G729/8000']) });
    const r = await ua.status(inv.callId, 488);
    ack(ua, inv, r);
    const text = 'no common codec: offered G729/8000 (pt 18); supported PCMU/8000, PCMA/8000';
    t.equal(r.headers.get('reason'), `SIP;cause=488;text="${text}"`);
    t.equal(r.headers.get('warning'), `305 127.0.0.1 "${text}"`);
    t.equal(FakeSession.all.length, before, 'no media allocated');
  });

  t.test('no SDP (delayed offer) → 200 with our offer, answer in ACK applied, then greeting', async (t) => {
    const before = FakeSession.all.length;
    const inv = invite(ua, {});
    const r = await ua.status(inv.callId, 200);
    await new Promise((r) => setTimeout(r, 50));
    t.equal(FakeSession.all[before]!.played, 0, 'no greeting before the answer');
    t.match(r.body, /m=audio \d+ RTP\/AVP 0 8 101/);
    t.match(r.body, /a=sendrecv/);
    const session = FakeSession.all[before]!;
    t.same(session.opts, { codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: 101 }, 'no remote until the answer');
    const answer = sdpOffer('8 101', ['a=rtpmap:101 telephone-event/8000']).replace('m=audio 6000', 'm=audio 6100');
    const to = r.headers.get('to')!;
    ua.send(`ACK sip:18005550100@127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${inv.branch}-ack;rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1:${ua.port}>;tag=${inv.fromTag}
To: ${to}
Call-ID: ${inv.callId}
CSeq: 1 ACK
Content-Type: application/sdp
Content-Length: ${Buffer.byteLength(answer)}

${answer}`);
    await new Promise((r) => setTimeout(r, 100));
    t.same(session.codecs, [['PCMA', 8]]);
    t.same(session.remotes, [['127.0.0.1', 6100]]);
    const call = app.calls.get(inv.callId)!;
    t.equal(call.audio.codec, 'PCMA');
    t.equal(session.played, 1, 'greeting after the answer');
    await call.hangup();
  });

  t.test('malformed SDP → 488 with the parse error', async (t) => {
    const inv = invite(ua, { sdp: 'v=0\r\nthis is not sdp\r\n' });
    const r = await ua.status(inv.callId, 488);
    ack(ua, inv, r);
    t.match(r.headers.get('reason'), /malformed SDP: line 2/);
  });

  t.test('RTP/SAVP without a=crypto → 488 (302), the reason names it', async (t) => {
    const inv = invite(ua, { sdp: sdpOffer('0').replace('RTP/AVP', 'RTP/SAVP') });
    const r = await ua.status(inv.callId, 488);
    ack(ua, inv, r);
    t.match(r.headers.get('warning'), /^302 .*no usable a=crypto on m=audio RTP\/SAVP: no a=crypto line/);
  });

  t.test('RTP/SAVP + a=crypto (srtp optional) → 200 RTP/SAVP, our a=crypto with the same tag and suite, session keyed', async (t) => {
    const peerKey = Buffer.alloc(30, 7);
    const sdp = sdpOffer('0', [
      'a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:' + Buffer.alloc(46, 1).toString('base64'),
      `a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:${peerKey.toString('base64')}|2^31`,
      `a=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:${peerKey.toString('base64')}`,
    ]).replace('RTP/AVP', 'RTP/SAVP');
    const inv = invite(ua, { sdp });
    const r = await ua.status(inv.callId, 200);
    ack(ua, inv, r);
    t.match(r.body, /m=audio \d+ RTP\/SAVP 0/);
    const line = /a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)\r\n/.exec(r.body);
    t.ok(line, 'our a=crypto');
    t.equal(line![1], '5', 'the tag of the first usable line');
    t.equal(line![2], 'AES_CM_128_HMAC_SHA1_32');
    const ours = Buffer.from(line![3]!, 'base64');
    t.equal(ours.length, 30);
    t.notOk(ours.equals(peerKey), 'our own key, not an echo');
    const session = FakeSession.all[FakeSession.all.length - 1]!;
    t.equal(session.opts.srtp?.suite, 'AES_CM_128_HMAC_SHA1_32');
    t.ok(Buffer.from(session.opts.srtp!.remoteKey).equals(peerKey), 'the peer key unprotects');
    t.ok(Buffer.from(session.opts.srtp!.localKey).equals(ours), 'the key in the answer protects');
    await app.calls.get(inv.callId)!.hangup();
    await ua.wait((m) => 'method' in m && m.method === 'BYE' && m.headers.get('call-id') === inv.callId);
  });

  t.test('RTP/SAVP with only an MKI or a short lifetime → 488 naming why', async (t) => {
    const key = Buffer.alloc(30, 9).toString('base64');
    const sdp = sdpOffer('0', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^20|1:4`, `a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^16`])
      .replace('RTP/AVP', 'RTP/SAVP');
    const inv = invite(ua, { sdp });
    const r = await ua.status(inv.callId, 488);
    ack(ua, inv, r);
    t.match(r.headers.get('reason'), /tag 1 AES_CM_128_HMAC_SHA1_80: MKI not supported/);
    t.match(r.headers.get('reason'), /tag 2 AES_CM_128_HMAC_SHA1_80: key lifetime 2\^16 not supported/);
    t.notMatch(r.raw, new RegExp(key.replace(/[+/=]/g, '.')), 'the key is not echoed');
  });

  t.test('all sessions released', async (t) => {
    await new Promise((r) => setTimeout(r, 50));
    t.equal(app.activeCalls, 0);
    t.same(FakeSession.all.map((s) => s.closed), FakeSession.all.map(() => 1), 'every session closed exactly once');
  });
});

t.test('SRTP policy: required refuses plain RTP, off refuses SAVP, a trunk overrides the global', async (t) => {
  const key = Buffer.alloc(30, 3).toString('base64');
  const savp = sdpOffer('0', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key}`]).replace('RTP/AVP', 'RTP/SAVP');

  t.test('srtp: required → plain RTP/AVP gets 488 "SRTP required on this trunk"; SAVP is answered', async (t) => {
    const env = await boot({ srtp: 'required' });
    t.teardown(() => env.stop());
    const inv = invite(env.ua, { sdp: sdpOffer('0') });
    const r = await env.ua.status(inv.callId, 488);
    ack(env.ua, inv, r);
    t.match(r.headers.get('reason'), /^SIP;cause=488;text="SRTP required on this trunk \(offered m=audio RTP\/AVP\)"/);
    t.match(r.headers.get('warning'), /^302 /);
    const inv2 = invite(env.ua, { sdp: savp });
    const r2 = await env.ua.status(inv2.callId, 200);
    ack(env.ua, inv2, r2);
    t.match(r2.body, /RTP\/SAVP/);
    t.match(r2.body, /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:/);
    const inv3 = invite(env.ua, {});
    const r3 = await env.ua.status(inv3.callId, 488);
    ack(env.ua, inv3, r3);
    t.match(r3.headers.get('reason'), /delayed offer/, 'no SDP in the INVITE: we would have to offer SRTP ourselves');
  });

  t.test('srtp: off → RTP/SAVP gets 488 "SRTP is off on this trunk"; plain RTP answered', async (t) => {
    const env = await boot({ srtp: 'off' });
    t.teardown(() => env.stop());
    const inv = invite(env.ua, { sdp: savp });
    const r = await env.ua.status(inv.callId, 488);
    ack(env.ua, inv, r);
    t.match(r.headers.get('reason'), /SRTP is off on this trunk \(offered m=audio RTP\/SAVP\)/);
    const inv2 = invite(env.ua, { sdp: sdpOffer('0') });
    const r2 = await env.ua.status(inv2.callId, 200);
    ack(env.ua, inv2, r2);
    t.notMatch(r2.body, /crypto|SAVP/);
  });

  t.test('a trunk with srtp: required (the loopback source) beats the global optional', async (t) => {
    const env = await boot({ srtp: 'optional', trunks: [{ name: 'secure', sources: ['127.0.0.0/8'], trustIdentity: true, country: 'US', srtp: 'required' }] });
    t.teardown(() => env.stop());
    const inv = invite(env.ua, { sdp: sdpOffer('0') });
    const r = await env.ua.status(inv.callId, 488);
    ack(env.ua, inv, r);
    t.match(r.headers.get('reason'), /SRTP required on this trunk/);
  });
});

t.test('no default tenant: unknown number → 404', async (t) => {
  const env = await boot({}, parseTenants({ tenants: [{ id: 'a', name: 'A', dids: ['1'], greeting: 'hi' }] }, 'x.yaml'));
  t.teardown(() => env.stop());
  const inv = invite(env.ua, { user: '555', sdp: sdpOffer('0') });
  const r = await env.ua.status(inv.callId, 404);
  ack(env.ua, inv, r, '555');
  t.pass('404');
});

t.test('answer delay: 180 Ringing, CANCEL while ringing → 487, session released, no 200', async (t) => {
  const env = await boot({ answerDelayMs: 400 });
  t.teardown(() => env.stop());
  const { ua, app } = env;
  const before = FakeSession.all.length;
  const inv = invite(ua, { sdp: sdpOffer('0') });
  await ua.status(inv.callId, 180);
  const call: Call = app.calls.get(inv.callId)!;
  ua.send(`CANCEL sip:18005550100@127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${inv.branch};rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1:${ua.port}>;tag=${inv.fromTag}
To: <sip:18005550100@127.0.0.1:${ua.target}>
Call-ID: ${inv.callId}
CSeq: 1 CANCEL
Content-Length: 0

`);
  const r = await ua.status(inv.callId, 487);
  ack(ua, inv, r);
  t.equal((await call.ended).reason, 'canceled');
  t.equal(FakeSession.all[before]!.closed, 1);
  await new Promise((r) => setTimeout(r, 600));
  t.notOk(ua.received.some((m) => 'status' in m && m.status === 200 && m.headers.get('call-id') === inv.callId && m.headers.get('cseq')!.endsWith('INVITE')), 'never answered');
});

t.test('shutdown hangs up live calls with BYE (Reason cause=41)', async (t) => {
  const env = await boot();
  const { ua, app } = env;
  const inv = invite(ua, { sdp: sdpOffer('0') });
  const r = await ua.status(inv.callId, 200);
  ack(ua, inv, r);
  const call = app.calls.get(inv.callId)!;
  const byeSeen = ua.wait((m) => 'method' in m && m.method === 'BYE' && m.headers.get('call-id') === inv.callId);
  await app.shutdown(2000);
  const bye = (await byeSeen) as SipReq;
  t.match(bye.headers.get('reason'), /cause=41/);
  t.equal((await call.ended).reason, 'shutdown');
  ua.close();
  await env.edge.stop();
});

t.test('reconnects when the edge control connection drops', async (t) => {
  const mk = (port: number) => new SipEdge({ sip: { address: '127.0.0.1', port: 0, transports: ['udp'] }, control: { address: '127.0.0.1', port, secret: 'cymru' } });
  let edge = mk(0);
  await edge.start();
  const port = edge.controlPort;
  const app = new VoiceApp({
    config: { ...defaultConfig(), drachtio: { host: '127.0.0.1', port, secret: 'cymru' } },
    tenants: TENANTS, engine, synthesize: async () => new Int16Array(1),
  });
  await app.connect();
  t.equal(edge.appCount, 1);
  await edge.stop();
  edge = mk(port);
  await edge.start();
  for (let i = 0; i < 50 && edge.appCount === 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(edge.appCount, 1, 'app reconnected to the restarted edge');
  const ua = new TestUa(edge.sipPort);
  await ua.open();
  const inv = invite(ua, { sdp: sdpOffer('0') });
  const r = await ua.status(inv.callId, 200);
  ack(ua, inv, r);
  t.pass('calls work after the reconnect');
  await app.shutdown(1000);
  ua.close();
  await edge.stop();
});

// ---- rtpengine anchor (fake anchor: what the app sends through it, and releases) ----------

/** rtpengine's side as the fake shows it: B-side toward us, A-side toward the carrier. */
const RTE_B = { address: '10.9.9.9', port: 30000 };
const RTE_A = { address: '10.9.9.9', port: 30002 };
const rewrite = (sdp: string, ep: { address: string; port: number }) =>
  sdp.replace(/^c=IN IP4 \S+/m, `c=IN IP4 ${ep.address}`).replace(/^m=audio \d+/m, `m=audio ${ep.port}`);

class FakeLeg {
  ops: string[] = [];
  releases: string[] = [];
  constructor(readonly callId: string, readonly carrierTag: string, readonly anchor: FakeAnchor) {}
  async fromCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string> {
    this.ops.push(`fromCarrier:${kind}`);
    await new Promise((r) => setTimeout(r, this.anchor.delayMs));
    if (this.anchor.fail === 'fromCarrier') throw new Error('rtpengine at udp://127.0.0.1:1 did not answer \'offer\' within 100 ms');
    return rewrite(sdp, RTE_B);
  }
  async toCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string> {
    this.ops.push(`toCarrier:${kind}`);
    if (this.anchor.fail === 'toCarrier') throw new Error('rtpengine rejected \'answer\'');
    return rewrite(sdp, RTE_A);
  }
  release(reason = 'hangup'): Promise<void> {
    this.releases.push(reason);
    return Promise.resolve();
  }
}
class FakeAnchor {
  legs: FakeLeg[] = [];
  fail: 'fromCarrier' | 'toCarrier' | null = null;
  delayMs = 0;
  config = { url: 'udp://127.0.0.1:1' };
  begin(callId: string, tag: string): FakeLeg {
    const l = new FakeLeg(callId, tag, this);
    this.legs.push(l);
    return l;
  }
  leg(callId: string): FakeLeg | undefined { return this.legs.find((l) => l.callId === callId); }
}

function bye(ua: TestUa, inv: { callId: string; fromTag: string }, to: string): void {
  ua.send(`BYE sip:18005550100@127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=z9hG4bK-bye-${inv.callId};rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1:${ua.port}>;tag=${inv.fromTag}
To: ${to}
Call-ID: ${inv.callId}
CSeq: 2 BYE
Content-Length: 0

`);
}

t.test('rtpengine anchor', async (t) => {
  const anchor = new FakeAnchor();
  const env = await boot({}, TENANTS, { rtpengine: anchor as unknown as RtpengineAnchor });
  t.teardown(() => env.stop());
  const { ua, app } = env;

  t.test('offer via rtpengine: session negotiates against the B-side, 200 carries the A-side; BYE releases once', async (t) => {
    anchor.fail = null;
    const before = FakeSession.all.length;
    const inv = invite(ua, { sdp: sdpOffer('0 101', ['a=rtpmap:101 telephone-event/8000']) });
    const r = await ua.status(inv.callId, 200);
    ack(ua, inv, r);
    const leg = anchor.leg(inv.callId)!;
    t.equal(leg.carrierTag, inv.fromTag, 'the carrier\'s From-tag names its rtpengine monologue');
    t.same(leg.ops, ['fromCarrier:offer', 'toCarrier:answer']);
    const session = FakeSession.all[before]!;
    t.same(session.opts.remote, RTE_B, 'our media session sends to rtpengine\'s B-side');
    t.match(r.body, /c=IN IP4 10\.9\.9\.9/);
    t.match(r.body, /m=audio 30002 RTP\/AVP 0 101/, '200 OK carries rtpengine\'s A-side');
    const call = app.calls.get(inv.callId)!;
    t.notMatch(call.sdp, /30002/, 'the Call keeps our own SDP');
    bye(ua, inv, r.headers.get('to')!);
    t.equal((await call.ended).reason, 'caller-bye');
    await new Promise((r) => setTimeout(r, 20));
    t.same(leg.releases, ['caller-bye'], 'released exactly once');
    t.equal(session.closed, 1);
  });

  t.test('rtpengine fails on the offer → 503 media relay unavailable, no media session, released', async (t) => {
    anchor.fail = 'fromCarrier';
    t.teardown(() => { anchor.fail = null; });
    const before = FakeSession.all.length;
    const inv = invite(ua, { sdp: sdpOffer('0') });
    const r = await ua.status(inv.callId, 503);
    ack(ua, inv, r);
    t.equal(r.headers.get('reason'), 'SIP;cause=503;text="media relay unavailable"');
    t.equal(r.headers.get('retry-after'), '2');
    t.equal(FakeSession.all.length, before, 'no media session allocated');
    t.same(anchor.leg(inv.callId)!.releases, ['error']);
    t.equal(app.activeCalls, 0);
  });

  t.test('rtpengine fails on our answer → 503, session closed, released once', async (t) => {
    anchor.fail = 'toCarrier';
    t.teardown(() => { anchor.fail = null; });
    const before = FakeSession.all.length;
    const inv = invite(ua, { sdp: sdpOffer('0') });
    const r = await ua.status(inv.callId, 503);
    ack(ua, inv, r);
    t.equal(r.headers.get('reason'), 'SIP;cause=503;text="media relay unavailable"');
    await new Promise((r) => setTimeout(r, 20));
    t.equal(FakeSession.all[before]!.closed, 1);
    t.same(anchor.leg(inv.callId)!.releases, ['error']);
  });

  t.test('488 after the relay → released once', async (t) => {
    const inv = invite(ua, { sdp: sdpOffer('18', ['a=rtpmap:18 G729/8000']) });
    const r = await ua.status(inv.callId, 488);
    ack(ua, inv, r);
    t.same(anchor.leg(inv.callId)!.releases, ['rejected']);
  });

  t.test('CANCEL while rtpengine is slow → 487, nothing allocated, released once', async (t) => {
    anchor.delayMs = 300;
    t.teardown(() => { anchor.delayMs = 0; });
    const before = FakeSession.all.length;
    const inv = invite(ua, { sdp: sdpOffer('0') });
    await new Promise((r) => setTimeout(r, 100));
    ua.send(`CANCEL sip:18005550100@127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${inv.branch};rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1:${ua.port}>;tag=${inv.fromTag}
To: <sip:18005550100@127.0.0.1:${ua.target}>
Call-ID: ${inv.callId}
CSeq: 1 CANCEL
Content-Length: 0

`);
    const r = await ua.status(inv.callId, 487);
    ack(ua, inv, r);
    await new Promise((r) => setTimeout(r, 400));
    t.equal(FakeSession.all.length, before, 'no media session');
    t.same(anchor.leg(inv.callId)!.releases, ['canceled']);
    t.notOk(ua.received.some((m) => 'status' in m && m.status === 200 && m.headers.get('call-id') === inv.callId && m.headers.get('cseq')!.endsWith('INVITE')));
  });

  t.test('delayed offer via rtpengine: our offer → toCarrier(offer), ACK answer → fromCarrier(answer)', async (t) => {
    const before = FakeSession.all.length;
    const inv = invite(ua, {});
    const r = await ua.status(inv.callId, 200);
    t.match(r.body, /m=audio 30002 RTP\/AVP 0 8 101/);
    const answer = sdpOffer('0 101', ['a=rtpmap:101 telephone-event/8000']).replace('m=audio 6000', 'm=audio 6100');
    ua.send(`ACK sip:18005550100@127.0.0.1:${ua.target} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${inv.branch}-ack;rport
Max-Forwards: 70
From: <sip:caller@127.0.0.1:${ua.port}>;tag=${inv.fromTag}
To: ${r.headers.get('to')}
Call-ID: ${inv.callId}
CSeq: 1 ACK
Content-Type: application/sdp
Content-Length: ${Buffer.byteLength(answer)}

${answer}`);
    await new Promise((r) => setTimeout(r, 100));
    const leg = anchor.leg(inv.callId)!;
    t.same(leg.ops, ['toCarrier:offer', 'fromCarrier:answer']);
    t.same(FakeSession.all[before]!.remotes, [[RTE_B.address, RTE_B.port]], 'answer applied as relayed by rtpengine');
    const call = app.calls.get(inv.callId)!;
    await call.hangup();
    t.same(leg.releases, ['agent-hangup']);
  });

  t.test('shutdown releases live anchored calls once', async (t) => {
    const inv = invite(ua, { sdp: sdpOffer('0') });
    const r = await ua.status(inv.callId, 200);
    ack(ua, inv, r);
    await app.shutdown(1000);
    t.same(anchor.leg(inv.callId)!.releases, ['shutdown']);
  });
});

t.test('Opus when the media core lists it: negotiated with the offer\'s PT, peer fmtp to createSession', async (t) => {
  const env = await boot({}, TENANTS, { supportedCodecs: ['PCMU', 'PCMA', 'opus'] });
  t.teardown(() => env.stop());
  const { ua, app } = env;
  const before = FakeSession.all.length;
  const inv = invite(ua, { sdp: sdpOffer('96 0', ['a=rtpmap:96 opus/48000/2', 'a=fmtp:96 useinbandfec=1;maxaveragebitrate=20000']) });
  const r = await ua.status(inv.callId, 200);
  ack(ua, inv, r);
  t.match(r.body, /m=audio \d+ RTP\/AVP 96\r\n/);
  t.match(r.body, /a=rtpmap:96 opus\/48000\/2/);
  t.same(FakeSession.all[before]!.opts, {
    codec: 'opus', payloadType: 96, remote: { address: '127.0.0.1', port: 6000 }, fmtp: 'useinbandfec=1;maxaveragebitrate=20000',
  });
  await app.calls.get(inv.callId)!.hangup();

  const env2 = await boot({}, TENANTS, { supportedCodecs: ['PCMU', 'PCMA'] });
  t.teardown(() => env2.stop());
  const inv2 = invite(env2.ua, { sdp: sdpOffer('96 0', ['a=rtpmap:96 opus/48000/2']) });
  const r2 = await env2.ua.status(inv2.callId, 200);
  ack(env2.ua, inv2, r2);
  t.match(r2.body, /RTP\/AVP 0\r\n/, 'without Opus in the core: G.711');
  await env2.app.calls.get(inv2.callId)!.hangup();
});

// ---- caller identity and dialed number as carriers send them ------------------------------

t.test('identity: tel:/escaped/national Request-URIs reach their tenant, ANI from tel:/PAI, Privacy', async (t) => {
  const tenants = parseTenants({
    tenants: [
      { id: 'acme', name: 'Acme', dids: ['18005550100'], greeting: 'Hello from Acme.' },
      { id: 'status', name: 'Status', dids: ['+18005550111'], greeting: 'Status line.' },
      { id: 'north', name: 'North', default: true, greeting: 'Hello from North.' },
    ],
  }, 'test.yaml');
  const env = await boot({}, tenants);
  t.teardown(() => env.stop());
  const { ua, app } = env;
  const store = new CrmErpStore();
  t.teardown(() => store.close());

  const place = async (opts: Parameters<typeof invite>[1]): Promise<Call> => {
    const inv = invite(ua, { sdp: sdpOffer('0'), ...opts });
    const r = await ua.status(inv.callId, 200);
    ack(ua, inv, r);
    const call = app.calls.get(inv.callId)!;
    t.teardown(() => call.hangup());
    return call;
  };

  t.test('tel: Request-URI with visual separators → its tenant', async (t) => {
    const call = await place({ uri: 'tel:+1-800-555-0111', to: 'tel:+1-800-555-0111' });
    t.equal(call.tenant.id, 'status');
    t.equal(call.to, '+18005550111');
  });

  t.test('%-escaped sip: Request-URI with user=phone → its tenant', async (t) => {
    const call = await place({ uri: `sip:%2B18005550111@127.0.0.1:${ua.target};user=phone`, to: 'sip:x@127.0.0.1' });
    t.equal(call.tenant.id, 'status');
  });

  t.test('national form in the Request-URI (US default) → tenant listed in E.164', async (t) => {
    const call = await place({ uri: `sip:8005550100@127.0.0.1:${ua.target}`, to: `sip:8005550100@127.0.0.1` });
    t.equal(call.tenant.id, 'acme');
    t.equal(call.to, '+18005550100');
  });

  t.test('forwarded call: delivered number unknown, original called (History-Info) is a tenant\'s', async (t) => {
    const call = await place({
      uri: `sip:+18005550999@127.0.0.1:${ua.target}`, to: 'sip:+18005550999@127.0.0.1',
      headers: ['History-Info: <sip:+18005550100@pbx.example>;index=1, <sip:+18005550999@127.0.0.1;cause=302>;index=1.1'],
    });
    t.equal(call.tenant.id, 'acme');
    t.equal(call.to, '+18005550999', 'DNIS is what the carrier delivered');
    t.equal(call.originalCalled, '+18005550100');
  });

  t.test('From: <tel:+1…> → ANI in E.164, identified by the CRM', async (t) => {
    const call = await place({ from: 'tel:+1-415-555-0142' });
    t.equal(call.ani, '+14155550142');
    t.equal(call.from, '+14155550142');
    const who = store.identifyCaller(call.ani);
    t.equal(who.found, true);
    t.equal(who.contact?.name, 'Dana Reyes');
  });

  t.test('PAI from a trusted source (loopback, no trunks configured) beats From', async (t) => {
    const call = await place({ from: 'sip:200@pbx.example', headers: ['P-Asserted-Identity: "Dana" <sip:4155550142@carrier.example;user=phone>'] });
    t.equal(call.ani, '+14155550142');
  });

  t.test('Privacy: id → from is anonymous (logs, CDR, pop), ANI kept for the CRM', async (t) => {
    const call = await place({
      from: 'sip:anonymous@anonymous.invalid',
      headers: ['P-Asserted-Identity: <tel:+14155550142>', 'Privacy: id'],
    });
    t.equal(call.from, 'anonymous');
    t.equal(call.privacy, true);
    t.equal(call.ani, '+14155550142');
    t.equal(store.identifyCaller(call.ani).found, true);
  });
});

t.test('identity: PAI from a source that is no trusted trunk is ignored', async (t) => {
  const env = await boot({ trunks: [{ name: 'carrier', sources: ['203.0.113.0/24'], trustIdentity: true, country: 'US' }] });
  t.teardown(() => env.stop());
  const inv = invite(env.ua, { sdp: sdpOffer('0'), from: 'sip:+15105550177@127.0.0.1', headers: ['P-Asserted-Identity: <tel:+14155550142>'] });
  const r = await env.ua.status(inv.callId, 200);
  ack(env.ua, inv, r);
  const call = env.app.calls.get(inv.callId)!;
  t.equal(call.ani, '+15105550177', 'loopback is no configured trunk: From, not the PAI');
  await call.hangup();
});

// ---- bodies: SIP-I / SIP-T multipart -------------------------------------------------------

t.test('bodies: multipart/mixed (SDP + ISUP) answered from the SDP part; other bodies 415, broken multipart 400', async (t) => {
  const env = await boot();
  t.teardown(() => env.stop());
  const { ua, app } = env;
  const sdp = sdpOffer('8 0', ['a=rtpmap:8 PCMA/8000']);
  const multipart = [
    'preamble',
    '--sip-i-1',
    'Content-Type: application/sdp',
    '',
    sdp.replace(/\r\n$/, ''),
    '--sip-i-1',
    'Content-Type: application/ISUP; version=itu-t92+',
    'Content-Disposition: signal; handling=optional',
    '',
    'IAM 0a0002',
    '--sip-i-1--',
    '',
  ].join('\r\n');

  t.test('SIP-I multipart/mixed → 200 with our SDP, negotiated from the SDP part', async (t) => {
    const before = FakeSession.all.length;
    const inv = invite(ua, { sdp: multipart, contentType: 'multipart/mixed; boundary="sip-i-1"', headers: ['MIME-Version: 1.0'] });
    const r = await ua.status(inv.callId, 200);
    ack(ua, inv, r);
    t.match(r.body, /m=audio \d+ RTP\/AVP 8\r\n/);
    t.equal(r.headers.get('content-type'), 'application/sdp');
    t.same(FakeSession.all[before]!.opts, { codec: 'PCMA', payloadType: 8, remote: { address: '127.0.0.1', port: 6000 } });
    await app.calls.get(inv.callId)!.hangup();
  });

  t.test('multipart without an SDP part → 415 with Accept', async (t) => {
    const body = ['--b', 'Content-Type: application/ISUP; version=itu-t', '', 'IAM', '--b--', ''].join('\r\n');
    const inv = invite(ua, { sdp: body, contentType: 'multipart/mixed; boundary=b' });
    const r = await ua.status(inv.callId, 415);
    ack(ua, inv, r);
    t.equal(r.headers.get('accept'), 'application/sdp, multipart/mixed, multipart/alternative');
  });

  t.test('application/xml → 415 with Accept', async (t) => {
    const inv = invite(ua, { sdp: '<x/>', contentType: 'application/xml' });
    const r = await ua.status(inv.callId, 415);
    ack(ua, inv, r);
    t.match(r.headers.get('accept'), /^application\/sdp/);
  });

  t.test('multipart/mixed without a boundary parameter → 400 naming the problem', async (t) => {
    const inv = invite(ua, { sdp: multipart, contentType: 'multipart/mixed' });
    const r = await ua.status(inv.callId, 400);
    ack(ua, inv, r);
    t.match(r.headers.get('warning'), /^399 \S+ "malformed multipart\/mixed body: no boundary parameter"/);
  });
});
