/**
 * The built-in SIP edge against the real drachtio-srf client, with real UDP/TCP SIP on
 * 127.0.0.1. Frames between srf and the edge are recorded and compared with the layouts of
 * the drachtio-server reference traces (token counts, ids, empty tokens).
 */
import t from 'tap';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { SipPeer, harness, sleep, SDP, APP_SDP, type Frame } from './sip-edge-helpers.ts';
import { SipEdge } from '../../src/sip-edge/index.ts';
import { FrameDecoder, encodeFrame, splitPayload } from '../../src/sip-edge/wire.ts';
import { SipMessage } from '../../src/sip-edge/message.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const isSip = (f: Frame, dir: 'app' | 'edge' = 'edge') => f.dir === dir && f.tokens[1] === 'sip';
const sipOf = (f: Frame) => (f.sip ?? '').split('\r\n')[0];

/** A raw drachtio client (for framing, secrets, pings). */
async function rawClient(port: number) {
  const s = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => s.once('connect', () => r()));
  const dec = new FrameDecoder();
  const got: string[][] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  s.on('data', (c) => {
    for (const p of dec.push(c)) got.push(splitPayload(p).tokens);
    wake?.();
  });
  s.on('close', () => { closed = true; wake?.(); });
  s.on('error', () => undefined);
  const next = async (n: number, ms = 2000): Promise<string[][]> => {
    const end = Date.now() + ms;
    while (got.length < n && Date.now() < end) await new Promise<void>((r) => { wake = r; setTimeout(r, 20); });
    return got.slice(0, n);
  };
  return { s, got, next, isClosed: () => closed };
}

t.test('control connection: framing, authenticate, route, ping, bad secret', async (t) => {
  const edge = new SipEdge({
    sip: { address: '127.0.0.1', port: 0, transports: ['udp', 'tcp'] },
    control: { address: '127.0.0.1', port: 0, secret: 'cymru' },
  });
  await edge.start();
  t.teardown(() => edge.stop());

  const c = await rawClient(edge.controlPort);
  const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  // authenticate + two routes + ping in one write; then the ping split byte by byte
  c.s.write(Buffer.concat([
    encodeFrame(`${ids[0]}|authenticate|cymru|`),
    encodeFrame(`${ids[1]}|route|invite`),
    encodeFrame(`${ids[2]}|route|options`),
  ]));
  const ping = encodeFrame(`${ids[3]}|ping`);
  for (const b of ping) { c.s.write(Buffer.from([b])); await sleep(1); }
  const r = await c.next(4);
  t.equal(r.length, 4, 'four responses');
  const [auth, r1, r2, pong] = r as [string[], string[], string[], string[]];
  t.equal(auth.length, 7, 'authenticate answer has 7 tokens');
  t.match(auth[0], UUID);
  t.same(auth.slice(1, 4), ['response', ids[0], 'OK']);
  t.equal(auth[4], `tcp/127.0.0.1:${edge.sipPort},udp/127.0.0.1:${edge.sipPort}`);
  t.match(auth[5], /^v\d+\.\d+\.\d+/);
  t.equal(auth[6], auth[4]);
  t.same(r1.slice(1), ['response', ids[1], 'OK']);
  t.same(r2.slice(1), ['response', ids[2], 'OK']);
  t.same(pong.slice(1), ['response', ids[3], 'OK', 'pong']);
  c.s.destroy();

  const bad = await rawClient(edge.controlPort);
  const bid = randomUUID();
  bad.s.write(encodeFrame(`${bid}|authenticate|wrong|`));
  const br = await bad.next(1);
  t.same(br[0]!.slice(1), ['response', bid, 'NO', 'incorrect secret']);
  await sleep(100);
  t.ok(bad.isClosed(), 'connection closed after a bad secret');

  const garbage = await rawClient(edge.controlPort);
  garbage.s.write('hello there, this is not a drachtio frame at all');
  await sleep(100);
  t.ok(garbage.isClosed(), 'garbage framing closes the connection');
});

t.test('srf connects and reports the edge hostport', async (t) => {
  let hostport = '';
  const h = await harness((srf) => {
    srf.on('connect', (_e: unknown, hp: string) => { hostport = hp; });
    srf.invite(() => undefined);
    srf.options(() => undefined);
  }, { routes: 2 });
  t.teardown(h.close);
  t.equal(hostport, `tcp/127.0.0.1:${h.edge.sipPort},udp/127.0.0.1:${h.edge.sipPort}`);
  const routes = h.proxy.frames.filter((f) => f.dir === 'app' && f.tokens[1] === 'route').map((f) => f.tokens[2]).sort();
  t.same(routes, ['invite', 'options']);
  const authFrame = h.proxy.frames.find((f) => f.tokens[1] === 'authenticate')!;
  t.equal(authFrame.tokens.length, 4);
});

for (const transport of ['udp', 'tcp'] as const) {
  t.test(`inbound call over ${transport}: 200 with To-tag/Contact, ACK, BYE from caller`, async (t) => {
    let destroyed = false;
    let acked = false;
    const h = await harness((srf) => {
      srf.invite(async (req: any, res: any) => {
        const d = await srf.createUAS(req, res, { localSdp: APP_SDP });
        d.on('ack', () => { acked = true; });
        d.on('destroy', () => { destroyed = true; });
      });
    }, { routes: 1 });
    t.teardown(h.close);
    const peer = transport === 'udp' ? await SipPeer.udp(h.edge.sipPort) : await SipPeer.tcp(h.edge.sipPort);
    t.teardown(() => peer.close());

    const inv = peer.request('INVITE', { callId: `c1-${transport}-${randomUUID()}`, body: SDP });
    peer.send(inv);
    const trying = await peer.next((m) => m.status === 100, 3000, '100 Trying');
    t.notOk(trying.toTag, '100 Trying has no To-tag');
    const ok = await peer.next((m) => m.status === 200, 3000, '200 OK');
    t.ok(ok.toTag, '200 has a To-tag');
    t.equal(ok.get('Contact'), transport === 'tcp' ? `<sip:127.0.0.1:${h.edge.sipPort};transport=tcp>` : `<sip:127.0.0.1:${h.edge.sipPort}>`);
    t.equal(ok.get('Content-Type'), 'application/sdp');
    t.equal(ok.body.toString(), APP_SDP);
    t.match(ok.get('Via')!, new RegExp(`^${inv.get('Via')!.split(';rport')[0]}.*;rport=${peer.port}`), 'Via copied, rport filled in');
    peer.send(peer.ack(inv, ok));
    await sleep(100);
    t.ok(acked, 'app saw the ACK');

    const bye = peer.request('BYE', { callId: inv.callId, cseq: 2, toTag: ok.toTag });
    peer.send(bye);
    const byeOk = await peer.next((m) => m.status === 200 && m.cseq.method === 'BYE', 3000, '200 to BYE');
    t.equal(byeOk.toTag, ok.toTag);
    await sleep(50);
    t.ok(destroyed, 'app dialog destroyed');
    t.equal(h.edge.dialogCount, 0, 'dialog released');

    // ── frames vs reference layouts
    const fr = h.proxy.frames;
    const invF = fr.find((f) => isSip(f) && sipOf(f).startsWith('INVITE'))!;
    t.equal(invF.tokens.length, 13, 'INVITE: 13-token sip frame');
    t.same([invF.tokens[2], invF.tokens[4], invF.tokens[5], invF.tokens[6]], ['network', transport, '127.0.0.1', String(peer.port)]);
    t.equal(invF.tokens[9], '', 'no dialogId on the initial INVITE');
    t.same(invF.tokens.slice(10), ['127.0.0.1', String(h.edge.sipPort), '']);
    t.match(invF.tokens[8], UUID);
    t.match(invF.tokens[7], /^\d{2}:\d{2}:\d{2}\.\d{6}$/);
    t.equal(Number(invF.tokens[3]), inv.toBuffer().length, 'bytes = size on the SIP wire');
    const txn = invF.tokens[8];
    const dialogId = `${inv.callId};from-tag=${peer.tag}`;
    const conf = fr.find((f) => f.dir === 'edge' && f.tokens[1] === 'response' && f.tokens[13] === 'Msg sent:' && sipOf(f) === 'SIP/2.0 200 OK')!;
    t.equal(conf.tokens.length, 15, 'Msg sent: response confirmation has 15 tokens');
    t.same(conf.tokens.slice(3, 7), ['OK', 'application', String(Buffer.byteLength(conf.sip!)), transport]);
    t.same(conf.tokens.slice(10, 15), [txn, dialogId, '', 'Msg sent:', '']);
    const ackF = fr.find((f) => isSip(f) && sipOf(f).startsWith('ACK'))!;
    t.equal(ackF.tokens.length, 11, 'ACK: 11-token sip frame');
    t.equal(ackF.tokens[4], '', 'transport empty on ACK');
    t.equal(ackF.tokens[8], txn, 'ACK carries the INVITE transaction id');
    t.equal(ackF.tokens[9], dialogId);
    const byeF = fr.find((f) => isSip(f) && sipOf(f).startsWith('BYE'))!;
    t.equal(byeF.tokens.length, 11);
    t.not(byeF.tokens[8], txn, 'BYE has its own transaction id');
    t.equal(byeF.tokens[9], dialogId);
    const byeConf = fr.filter((f) => f.tokens[13] === 'Msg sent:').pop()!;
    t.equal(byeConf.tokens[6], '', 'transport empty on a non-INVITE response confirmation');
    t.equal(byeConf.tokens[11], '', 'dialogId empty after the dialog ended');
  });
}

t.test('inbound call over TCP, BYE from the app: far end gets a correct BYE', async (t) => {
  let dialog: any;
  const h = await harness((srf) => {
    srf.invite(async (req: any, res: any) => { dialog = await srf.createUAS(req, res, { localSdp: APP_SDP }); });
  }, { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.tcp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const inv = peer.request('INVITE', { callId: `c2-${randomUUID()}`, cseq: 7, body: SDP });
  peer.send(inv);
  const ok = await peer.next((m) => m.status === 200);
  peer.send(peer.ack(inv, ok));
  await sleep(50);
  const done = dialog.destroy();
  const bye = await peer.next((m) => m.method === 'BYE', 3000, 'BYE');
  t.equal(bye.uri, `sip:peer@127.0.0.1:${peer.port};transport=tcp`, 'Request-URI = caller Contact');
  t.equal(bye.fromTag, ok.toTag, 'From tag = our To-tag');
  t.equal(bye.toTag, peer.tag, 'To tag = caller tag');
  t.equal(bye.callId, inv.callId);
  t.same(bye.cseq, { seq: 8, method: 'BYE' }, 'CSeq one above the INVITE');
  t.notOk(bye.has('Contact'), 'no Contact on BYE');
  t.equal(bye.get('Max-Forwards'), '70');
  t.match(bye.get('Via')!, /^SIP\/2\.0\/TCP 127\.0\.0\.1:\d+;rport;branch=z9hG4bK/);
  peer.send(peer.respond(bye, 200));
  await done;
  t.equal(h.edge.dialogCount, 0);
  const byeReq = h.proxy.frames.find((f) => f.dir === 'app' && sipOf(f).startsWith('BYE sip:placeholder'))!;
  t.equal(byeReq.tokens.length, 4, 'app BYE: sip||<dialogId>');
  const conf = h.proxy.frames.find((f) => f.dir === 'edge' && f.tokens[2] === byeReq.tokens[0])!;
  t.equal(conf.tokens.length, 13, 'Msg sent: request confirmation has 13 tokens');
  t.same(conf.tokens.slice(6, 9), ['tcp', '127.0.0.1', String(h.edge.sipPort)]);
  t.match(conf.tokens[10], UUID);
  t.same(conf.tokens.slice(11), ['Msg sent:', '']);
  const resp = h.proxy.frames.find((f) => isSip(f) && sipOf(f) === 'SIP/2.0 200 OK' && f.tokens[8] === conf.tokens[10])!;
  t.ok(resp, '200 to BYE relayed with the confirmed transaction id');
  t.equal(resp.tokens.length, 11);
  t.equal(resp.tokens[9], byeReq.tokens[3], 'dialogId on the response');
});

t.test('CANCEL: edge answers 200 + 487, app gets cancel (with and without 180)', async (t) => {
  const canceled: string[] = [];
  const h = await harness((srf) => {
    srf.invite((req: any, res: any) => {
      req.on('cancel', () => canceled.push(req.get('Call-ID')));
      if (req.get('Subject') === 'ring') res.send(180);
    });
  }, { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  for (const ring of [false, true]) {
    const inv = peer.request('INVITE', { callId: `c3-${ring}-${randomUUID()}`, body: SDP, headers: ring ? [['Subject', 'ring']] : [] });
    peer.send(inv);
    await peer.next((m) => m.status === 100 && m.callId === inv.callId);
    let ringTag: string | undefined;
    if (ring) ringTag = (await peer.next((m) => m.status === 180 && m.callId === inv.callId)).toTag;
    else await sleep(100);
    const cancel = SipMessage.request('CANCEL', inv.uri!);
    cancel.add('Via', inv.get('Via')!);
    cancel.add('From', inv.get('From')!);
    cancel.add('To', inv.get('To')!);
    cancel.add('Call-ID', inv.callId);
    cancel.add('CSeq', '1 CANCEL');
    cancel.add('Max-Forwards', '70');
    cancel.add('Content-Length', '0');
    peer.send(cancel);
    const c200 = await peer.next((m) => m.status === 200 && m.cseq.method === 'CANCEL' && m.callId === inv.callId);
    const r487 = await peer.next((m) => m.status === 487 && m.callId === inv.callId);
    if (ring) {
      t.equal(c200.toTag, ringTag, '200 to CANCEL reuses the 180 To-tag');
      t.equal(r487.toTag, ringTag, '487 reuses the 180 To-tag');
    }
    peer.send(peer.ack(inv, r487));
    await sleep(100);
    t.ok(canceled.includes(inv.callId), `app got cancel (ring=${ring})`);
    const invF = h.proxy.frames.find((f) => isSip(f) && f.sip!.includes(inv.callId) && sipOf(f).startsWith('INVITE'))!;
    const canF = h.proxy.frames.find((f) => isSip(f) && f.sip!.includes(inv.callId) && sipOf(f).startsWith('CANCEL'))!;
    t.equal(canF.tokens.length, 11);
    t.equal(canF.tokens[8], invF.tokens[8], 'CANCEL carries the INVITE transaction id');
    t.equal(canF.tokens[9], ring ? `${inv.callId};from-tag=${peer.tag}` : '', 'dialogId only after a provisional');
    t.equal(canF.tokens[3], ring ? invF.tokens[3] : String(cancel.toBuffer().length), 'bytes quirk: INVITE size after a provisional');
    t.notOk(h.proxy.frames.some((f) => isSip(f) && f.sip!.includes(inv.callId) && sipOf(f).startsWith('ACK')), 'ACK for 487 absorbed');
  }
  t.equal(h.edge.dialogCount, 0);
});

t.test('OPTIONS: app answers (UTF-8 From), edge answers when no route; INVITE without app → 503', async (t) => {
  const h = await harness((srf) => {
    srf.options((_req: any, res: any) => res.send(200, { headers: { Allow: 'INVITE, ACK, BYE', 'X-App': 'test' } }));
  }, { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const opt = peer.request('OPTIONS', { callId: `o1-${randomUUID()}` });
  opt.set('From', `"Zoë Probe" <sip:peer@127.0.0.1:${peer.port}>;tag=${peer.tag}`);
  peer.send(opt);
  const r = await peer.next((m) => m.status === 200 && m.callId === opt.callId);
  t.equal(r.get('X-App'), 'test');
  t.ok(r.toTag, 'To-tag added');
  t.equal(r.get('From'), opt.get('From'), 'UTF-8 display name preserved');
  const conf = h.proxy.frames.find((f) => f.tokens[13] === 'Msg sent:')!;
  t.equal(conf.tokens[6], '', 'transport empty on OPTIONS response confirmation');
  t.equal(conf.tokens[11], '', 'no dialogId on OPTIONS');

  // An edge with no app at all
  const bare = new SipEdge({ sip: { address: '127.0.0.1', port: 0, transports: ['udp'] }, control: { address: '127.0.0.1', port: 0, secret: 'x' } });
  await bare.start();
  t.teardown(() => bare.stop());
  const p2 = await SipPeer.udp(bare.sipPort);
  t.teardown(() => p2.close());
  const o2 = p2.request('OPTIONS', { callId: `o2-${randomUUID()}` });
  p2.send(o2);
  const r2 = await p2.next((m) => m.callId === o2.callId);
  t.equal(r2.status, 200, 'edge answers OPTIONS itself');
  t.match(r2.get('Allow')!, /INVITE/);
  const i2 = p2.request('INVITE', { callId: `i2-${randomUUID()}`, body: SDP });
  p2.send(i2);
  const r3 = await p2.next((m) => m.callId === i2.callId && m.status! >= 200);
  t.equal(r3.status, 503);
  t.match(r3.get('Reason')!, /no application is connected/);
  t.match(r3.get('Warning')!, /^399 .*no application is connected/);
  const m2 = p2.request('MESSAGE', { callId: `m2-${randomUUID()}` });
  p2.send(m2);
  t.equal((await p2.next((m) => m.callId === m2.callId)).status, 405);
  const x2 = p2.request('FOO', { callId: `x2-${randomUUID()}` });
  p2.send(x2);
  t.equal((await p2.next((m) => m.callId === x2.callId)).status, 501);
});

t.test('488 with Reason/Warning headers; ACK absorbed', async (t) => {
  const h = await harness((srf) => {
    srf.invite((_req: any, res: any) => res.send(488, {
      headers: {
        reason: 'Q.850;cause=88;text="Incompatible destination"',
        warning: '399 127.0.0.1 "Incompatible SDP: no supported codec"',
        'X-Note': 'café',
      },
    }));
  }, { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const inv = peer.request('INVITE', { callId: `r1-${randomUUID()}`, body: SDP });
  peer.send(inv);
  const r = await peer.next((m) => m.status === 488);
  t.ok(r.toTag);
  t.equal(r.get('Reason'), 'Q.850;cause=88;text="Incompatible destination"');
  t.equal(r.get('Warning'), '399 127.0.0.1 "Incompatible SDP: no supported codec"');
  t.equal(r.get('X-Note'), 'café');
  peer.send(peer.ack(inv, r));
  await sleep(150);
  t.ok(await peer.none((m) => m.status === 488, 700), 'no 488 retransmission after ACK');
  const conf = h.proxy.frames.find((f) => f.tokens[13] === 'Msg sent:')!;
  t.equal(conf.tokens[11], `${inv.callId};from-tag=${peer.tag}`, 'dialogId present on a failing final');
  t.equal(conf.tokens[6], 'udp');
  t.notOk(h.proxy.frames.some((f) => isSip(f) && sipOf(f).startsWith('ACK')), 'ACK not passed to the app');
  t.equal(h.edge.dialogCount, 0);
});

t.test('in-dialog REFER from the app, NOTIFY back, re-INVITE from the caller', async (t) => {
  let dialog: any;
  const notified: string[] = [];
  const h = await harness((srf) => {
    srf.invite(async (req: any, res: any) => {
      dialog = await srf.createUAS(req, res, { localSdp: APP_SDP });
      dialog.on('notify', (r: any, s: any) => { notified.push(r.body); s.send(200); });
      dialog.on('modify', (_r: any, s: any) => s.send(200, { body: APP_SDP.replace('sendrecv', 'recvonly') }));
    });
  }, { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const inv = peer.request('INVITE', { callId: `f1-${randomUUID()}`, body: SDP });
  peer.send(inv);
  const ok = await peer.next((m) => m.status === 200);
  peer.send(peer.ack(inv, ok));
  await sleep(50);

  const referP = dialog.request({ method: 'REFER', headers: { 'Refer-To': '<sip:1001@127.0.0.1:5070>', 'X-Screen-Pop-Id': 'abc' } });
  const refer = await peer.next((m) => m.method === 'REFER');
  t.equal(refer.uri, `sip:peer@127.0.0.1:${peer.port}`);
  t.equal(refer.get('Contact'), `<sip:127.0.0.1:${h.edge.sipPort}>`, 'Contact on REFER');
  t.equal(refer.get('Refer-To'), '<sip:1001@127.0.0.1:5070>');
  t.equal(refer.get('X-Screen-Pop-Id'), 'abc');
  t.same(refer.cseq, { seq: 2, method: 'REFER' });
  peer.send(peer.respond(refer, 202, { contact: true }));
  const referRes = await referP;
  t.equal(referRes.status, 202, 'app sees 202');

  const notify = peer.request('NOTIFY', {
    callId: inv.callId, cseq: 2, toTag: ok.toTag, uri: `sip:127.0.0.1:${h.edge.sipPort}`,
    headers: [['Event', 'refer'], ['Subscription-State', 'terminated;reason=noresource'], ['Content-Type', 'message/sipfrag;version=2.0']],
  });
  notify.body = Buffer.from('SIP/2.0 200 OK\r\n');
  peer.send(notify);
  const nOk = await peer.next((m) => m.status === 200 && m.cseq.method === 'NOTIFY');
  t.equal(nOk.toTag, ok.toTag);
  t.same(notified, ['SIP/2.0 200 OK\r\n']);
  const nConf = h.proxy.frames.find((f) => f.tokens[13] === 'Msg sent:' && f.sip!.includes('NOTIFY'))!;
  t.equal(nConf.tokens[11], `${inv.callId};from-tag=${peer.tag}`, 'dialogId on 200 to NOTIFY');

  // re-INVITE from the caller
  const re = peer.request('INVITE', { callId: inv.callId, cseq: 3, toTag: ok.toTag, body: SDP.replace('sendrecv', 'sendonly'), uri: `sip:127.0.0.1:${h.edge.sipPort}` });
  peer.send(re);
  const reOk = await peer.next((m) => m.status === 200 && m.cseq.seq === 3);
  t.match(reOk.body.toString(), /recvonly/);
  t.ok(reOk.has('Contact'), 'Contact on 200 to re-INVITE');
  peer.send(peer.ack(re, reOk));
  await sleep(100);
  const reF = h.proxy.frames.find((f) => isSip(f) && sipOf(f).startsWith('INVITE') && f.sip!.includes('CSeq: 3 INVITE'))!;
  t.equal(reF.tokens.length, 11, 're-INVITE: 11-token in-dialog frame');
  const acks = h.proxy.frames.filter((f) => isSip(f) && sipOf(f).startsWith('ACK'));
  t.equal(acks.length, 2);
  t.not(acks[1]!.tokens[8], reF.tokens[8], 're-INVITE ACK carries a fresh transaction id');
  t.match(acks[1]!.tokens[8], UUID);
  peer.send(peer.request('BYE', { callId: inv.callId, cseq: 4, toTag: ok.toTag }));
  await peer.next((m) => m.status === 200 && m.cseq.method === 'BYE');
});

t.test('outbound call (createUAC) to a test UAS: 180, 200, ACK, BYE from app', async (t) => {
  const h = await harness(() => undefined);
  t.teardown(h.close);
  const uas = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => uas.close());
  const provisional: number[] = [];
  const p = h.srf.createUAC(`sip:1001@127.0.0.1:${uas.port}`, { localSdp: APP_SDP, headers: { 'X-Transfer-Summary': 'test' } }, {
    cbProvisional: (r: any) => provisional.push(r.status),
  });
  const inv = await uas.next((m) => m.method === 'INVITE', 3000, 'INVITE');
  t.equal(inv.uri, `sip:1001@127.0.0.1:${uas.port}`);
  t.match(inv.get('From')!, new RegExp(`^<sip:127\\.0\\.0\\.1:${h.edge.sipPort}>;tag=`));
  t.equal(inv.get('To'), `<sip:1001@127.0.0.1:${uas.port}>`);
  t.equal(inv.get('Contact'), `<sip:127.0.0.1:${h.edge.sipPort}>`);
  t.equal(inv.get('Content-Type'), 'application/sdp');
  t.equal(inv.get('X-Transfer-Summary'), 'test');
  t.equal(inv.get('Max-Forwards'), '70');
  uas.send(uas.respond(inv, 100));
  uas.send(uas.respond(inv, 180, { toTag: 'uas1', contact: true }));
  uas.send(uas.respond(inv, 200, { toTag: 'uas1', contact: true, body: SDP }));
  const ack = await uas.next((m) => m.method === 'ACK', 3000, 'ACK');
  t.equal(ack.uri, `sip:peer@127.0.0.1:${uas.port}`, 'ACK to the 200 Contact');
  t.same(ack.cseq, { seq: inv.cseq.seq, method: 'ACK' });
  t.equal(ack.toTag, 'uas1');
  const dialog = await p;
  t.same(provisional, [180], '100 not passed up, 180 is');
  t.equal(dialog.remote.sdp, SDP);
  const dialogId = `${inv.callId};from-tag=${inv.fromTag}`;
  t.equal(dialog.id, dialogId);
  const done = dialog.destroy();
  const bye = await uas.next((m) => m.method === 'BYE', 3000, 'BYE');
  t.equal(bye.uri, `sip:peer@127.0.0.1:${uas.port}`);
  t.same(bye.cseq, { seq: inv.cseq.seq + 1, method: 'BYE' });
  t.equal(bye.fromTag, inv.fromTag);
  t.equal(bye.toTag, 'uas1');
  uas.send(uas.respond(bye, 200));
  await done;
  t.equal(h.edge.dialogCount, 0);
  // frames
  const fr = h.proxy.frames;
  const invReq = fr.find((f) => f.dir === 'app' && sipOf(f).startsWith('INVITE'))!;
  t.same(invReq.tokens.slice(1), ['sip', '', ''], 'new request: sip||');
  const conf = fr.find((f) => f.dir === 'edge' && f.tokens[2] === invReq.tokens[0])!;
  t.equal(conf.tokens.length, 13);
  const r180 = fr.find((f) => isSip(f) && sipOf(f) === 'SIP/2.0 180 Ringing')!;
  t.equal(r180.tokens.length, 11);
  t.equal(r180.tokens[8], conf.tokens[10], 'responses carry the confirmed transaction id');
  t.equal(r180.tokens[9], dialogId, 'dialogId already on the 180');
  const appAck = fr.find((f) => f.dir === 'app' && sipOf(f).startsWith('ACK'))!;
  t.equal(appAck.tokens[3], dialogId);
  const ackConf = fr.find((f) => f.dir === 'edge' && f.tokens[2] === appAck.tokens[0])!;
  t.equal(ackConf.tokens.length, 13);
  t.not(ackConf.tokens[10], conf.tokens[10], 'ACK gets its own transaction id');
});

t.test('outbound call rejected 486: edge ACKs, app ACK refused with NOK', async (t) => {
  const h = await harness(() => undefined);
  t.teardown(h.close);
  const uas = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => uas.close());
  const p = h.srf.createUAC(`sip:1001@127.0.0.1:${uas.port}`, { localSdp: APP_SDP });
  const inv = await uas.next((m) => m.method === 'INVITE');
  uas.send(uas.respond(inv, 486, { toTag: 'busy1' }));
  const ack = await uas.next((m) => m.method === 'ACK');
  t.equal(ack.uri, inv.uri);
  t.equal(ack.get('Via'), inv.get('Via'), 'ACK for non-2xx reuses the INVITE branch');
  t.equal((await p.catch((e: any) => e)).status, 486, 'createUAC rejects with 486');
  const nok = await h.proxy.waitFrame((f) => f.dir === 'edge' && f.tokens[3] === 'NOK');
  t.same(nok.tokens.slice(3), ['NOK', 'Server error: ACK for non-success final response is automatically generated by server']);
  t.equal(nok.tokens.length, 5);
  t.equal(h.edge.dialogCount, 0);
});

t.test('outbound call unreachable (TCP refused) → local 503; no answer (UDP) → local 408', async (t) => {
  const h = await harness(() => undefined, { timers: { T1: 20 } });
  t.teardown(h.close);
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  t.equal((await h.srf.createUAC(`sip:1001@127.0.0.1:${deadPort};transport=tcp`, { localSdp: APP_SDP }).catch((e: any) => e)).status, 503, 'createUAC rejects with 503');
  const f503 = await h.proxy.waitFrame((f) => isSip(f) && sipOf(f).startsWith('SIP/2.0 503'));
  t.same([f503.tokens[2], f503.tokens[3], f503.tokens[4], f503.tokens[5], f503.tokens[6]], ['network', '0', 'tcp', '', '0'], 'locally generated 503 layout');
  t.ok(/;tag=/.test(f503.sip!.split('\r\n').find((l) => l.startsWith('To:'))!), '503 has a To-tag');

  const silent = await SipPeer.udp(h.edge.sipPort); // receives the INVITE, never answers
  t.teardown(() => silent.close());
  const t0 = Date.now();
  t.equal((await h.srf.createUAC(`sip:1001@127.0.0.1:${silent.port}`, { localSdp: APP_SDP }).catch((e: any) => e)).status, 408, 'createUAC rejects with 408');
  t.ok(Date.now() - t0 >= 64 * 20 - 50, 'timer B = 64*T1');
  t.ok(silent.inbox.filter((m) => m.method === 'INVITE').length >= 3, 'INVITE retransmitted (timer A)');
});

t.test('unknown dialog → 481; stray ACK dropped', async (t) => {
  const h = await harness((srf) => srf.invite(() => undefined), { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const bye = peer.request('BYE', { callId: `u1-${randomUUID()}`, cseq: 2, toTag: 'nosuch' });
  peer.send(bye);
  const r = await peer.next((m) => m.callId === bye.callId);
  t.equal(r.status, 481);
  const info = peer.request('INFO', { callId: `u2-${randomUUID()}`, cseq: 2, toTag: 'nosuch' });
  peer.send(info);
  t.equal((await peer.next((m) => m.callId === info.callId)).status, 481);
  const ack = peer.request('ACK', { callId: `u3-${randomUUID()}`, cseq: 1, toTag: 'nosuch' });
  peer.send(ack);
  t.ok(await peer.none((m) => m.callId === ack.callId, 300), 'no response to a stray ACK');
  t.notOk(h.proxy.frames.some((f) => isSip(f)), 'nothing reached the app');
});

t.test('no ACK for 2xx within 64*T1: edge BYEs the caller and the app sees destroy', async (t) => {
  let reason = '';
  const h = await harness((srf) => {
    srf.invite(async (req: any, res: any) => {
      const d = await srf.createUAS(req, res, { localSdp: APP_SDP });
      d.on('destroy', (_m: unknown, why: string) => { reason = why; });
    });
  }, { routes: 1, timers: { T1: 20 } });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const inv = peer.request('INVITE', { callId: `a1-${randomUUID()}`, body: SDP });
  peer.send(inv);
  const ok = await peer.next((m) => m.status === 200);
  const bye = await peer.next((m) => m.method === 'BYE', 4000, 'BYE after ACK timeout');
  t.equal(bye.fromTag, ok.toTag);
  t.ok(peer.inbox.filter((m) => m.status === 200).length >= 2, '2xx retransmitted while waiting for ACK');
  peer.send(peer.respond(bye, 200));
  await sleep(100);
  t.equal(reason, 'ACK timeout', 'app dialog destroyed with the reason');
  t.equal(h.edge.dialogCount, 0);
});

t.test('app disconnect: live dialogs get a BYE; two apps share INVITEs round-robin', async (t) => {
  const seen: string[] = [];
  const mk = (name: string) => (srf: any) => srf.invite(async (req: any, res: any) => {
    seen.push(name);
    await srf.createUAS(req, res, { localSdp: APP_SDP });
  });
  const h = await harness(mk('a'), { routes: 1 });
  t.teardown(h.close);
  const Srf = (await import('drachtio-srf')).default as any;
  const srf2 = new Srf();
  srf2.on('error', () => undefined);
  mk('b')(srf2);
  await new Promise<void>((r) => srf2.connect({ host: '127.0.0.1', port: h.edge.controlPort, secret: 'cymru' }, () => r()));
  await sleep(100);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const oks: SipMessage[] = [];
  for (let i = 0; i < 2; i++) {
    const inv = peer.request('INVITE', { callId: `rr${i}-${randomUUID()}`, body: SDP });
    peer.send(inv);
    const ok = await peer.next((m) => m.status === 200 && m.callId === inv.callId);
    peer.send(peer.ack(inv, ok));
    oks.push(ok);
  }
  t.same(seen.sort(), ['a', 'b'], 'one INVITE each');
  t.equal(h.edge.dialogCount, 2);
  srf2.disconnect();
  const bye = await peer.next((m) => m.method === 'BYE', 3000, 'BYE after app disconnect');
  peer.send(peer.respond(bye, 200));
  await sleep(100);
  t.equal(h.edge.dialogCount, 1, 'only the disconnected app\'s dialog was released');
});

t.test('outbound proxy token, app re-INVITE (modify) with edge-built ACK, app CANCEL', async (t) => {
  const h = await harness(() => undefined);
  t.teardown(h.close);
  const uas = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => uas.close());

  // outbound proxy: Request-URI stays, the message goes to the proxy address
  const p = h.srf.createUAC('sip:1001@example.invalid', { localSdp: APP_SDP, proxy: `sip:127.0.0.1:${uas.port}` });
  const inv = await uas.next((m) => m.method === 'INVITE', 3000, 'INVITE via proxy');
  t.equal(inv.uri, 'sip:1001@example.invalid', 'Request-URI unchanged');
  const invReq = h.proxy.frames.find((f) => f.dir === 'app' && sipOf(f).startsWith('INVITE'))!;
  t.equal(invReq.tokens.length, 5, 'sip|||<proxy> form');
  t.equal(invReq.tokens[4], `sip:127.0.0.1:${uas.port}`);
  uas.send(uas.respond(inv, 200, { toTag: 'px1', contact: true, body: SDP }));
  await uas.next((m) => m.method === 'ACK');
  const dialog = await p;

  // re-INVITE from the app
  const mod = dialog.modify(APP_SDP.replace('sendrecv', 'sendonly'));
  const re = await uas.next((m) => m.method === 'INVITE' && m.cseq.seq === inv.cseq.seq + 1, 3000, 're-INVITE');
  t.equal(re.uri, `sip:peer@127.0.0.1:${uas.port}`);
  t.equal(re.fromTag, inv.fromTag);
  t.equal(re.toTag, 'px1');
  t.ok(re.has('Contact'), 'Contact on re-INVITE');
  t.match(re.body.toString(), /sendonly/);
  uas.send(uas.respond(re, 200, { contact: true, body: SDP }));
  const reAck = await uas.next((m) => m.method === 'ACK' && m.cseq.seq === re.cseq.seq, 3000, 'ACK for re-INVITE');
  t.equal(reAck.toTag, 'px1');
  await mod;
  const bye = dialog.destroy();
  const b = await uas.next((m) => m.method === 'BYE');
  t.equal(b.cseq.seq, re.cseq.seq + 1);
  uas.send(uas.respond(b, 200));
  await bye;

  // app CANCEL of a ringing outbound call
  let sent: any;
  const p2 = h.srf.createUAC(`sip:2002@127.0.0.1:${uas.port}`, { localSdp: APP_SDP }, { cbRequest: (_e: unknown, r: any) => { sent = r; } });
  const inv2 = await uas.next((m) => m.method === 'INVITE' && m.uri!.startsWith('sip:2002'), 3000, 'second INVITE');
  uas.send(uas.respond(inv2, 180, { toTag: 'ring2' }));
  await sleep(100);
  sent.cancel();
  const cancel = await uas.next((m) => m.method === 'CANCEL', 3000, 'CANCEL');
  t.equal(cancel.get('Via'), inv2.get('Via'), 'CANCEL has the INVITE branch');
  t.same(cancel.cseq, { seq: inv2.cseq.seq, method: 'CANCEL' });
  uas.send(uas.respond(cancel, 200));
  uas.send(uas.respond(inv2, 487, { toTag: 'ring2' }));
  t.equal((await p2.catch((e: any) => e)).status, 487, 'createUAC rejects with 487');
  await uas.next((m) => m.method === 'ACK' && m.callId === inv2.callId, 3000, 'ACK for 487');
  t.equal(h.edge.dialogCount, 0);
});

t.test('app disconnects with an unanswered INVITE: caller gets 503; non-INVITE left unanswered gets 408', async (t) => {
  const h = await harness((srf) => {
    srf.invite(() => undefined);
    srf.message(() => undefined);
  }, { routes: 2, timers: { T1: 20 } });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const msg = peer.request('MESSAGE', { callId: `m-${randomUUID()}` });
  peer.send(msg);
  const r408 = await peer.next((m) => m.callId === msg.callId && m.status! >= 200, 4000, '408');
  t.equal(r408.status, 408, 'unanswered MESSAGE → 408 after 64*T1');
  const inv = peer.request('INVITE', { callId: `d-${randomUUID()}`, body: SDP });
  peer.send(inv);
  await h.proxy.waitFrame((f) => isSip(f) && f.sip!.includes(inv.callId));
  h.srf.disconnect();
  const r = await peer.next((m) => m.callId === inv.callId && m.status! >= 200, 3000, 'final after disconnect');
  t.equal(r.status, 503);
  t.match(r.get('Reason')!, /application disconnected/);
});

t.test('proxyRequest: serial failover, record-route, in-dialog relay without the app', async (t) => {
  let result: any;
  const h = await harness((srf) => {
    srf.invite(async (req: any) => {
      result = await srf.proxyRequest(req, [`sip:busy@127.0.0.1:${busy.port}`, `sip:1001@127.0.0.1:${uas.port}`], {
        recordRoute: true, headers: { 'X-Proxied-By': 'test' },
      });
    });
  }, { routes: 1 });
  t.teardown(h.close);
  const busy = await SipPeer.udp(h.edge.sipPort);
  const uas = await SipPeer.udp(h.edge.sipPort);
  const caller = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => { busy.close(); uas.close(); caller.close(); });

  const inv = caller.request('INVITE', { callId: `p1-${randomUUID()}`, body: SDP });
  caller.send(inv);
  const b1 = await busy.next((m) => m.method === 'INVITE', 3000, 'INVITE to first destination');
  t.equal(b1.uri, `sip:busy@127.0.0.1:${busy.port}`);
  busy.send(busy.respond(b1, 486, { toTag: 'busy' }));
  await busy.next((m) => m.method === 'ACK', 3000, 'edge ACKs the 486');
  const fwd = await uas.next((m) => m.method === 'INVITE', 3000, 'INVITE to second destination');
  t.equal(fwd.uri, `sip:1001@127.0.0.1:${uas.port}`);
  t.equal(fwd.get('Max-Forwards'), '69');
  t.equal(fwd.get('Record-Route'), `<sip:127.0.0.1:${h.edge.sipPort};lr>`);
  t.equal(fwd.get('X-Proxied-By'), 'test');
  t.equal(fwd.getAll('Via').length, 2, 'own Via on top of the caller\'s');
  t.equal(fwd.body.toString(), SDP);
  uas.send(uas.respond(fwd, 180, { toTag: 'uasp' }));
  await caller.next((m) => m.status === 180, 3000, '180 relayed');
  uas.send(uas.respond(fwd, 200, { toTag: 'uasp', contact: true, body: SDP, headers: [['Record-Route', fwd.get('Record-Route')!]] }));
  const ok = await caller.next((m) => m.status === 200, 3000, '200 relayed');
  t.equal(ok.getAll('Via').length, 1, 'edge Via stripped');
  t.ok(ok.get('Via')!.includes(/branch=([^;]+)/.exec(inv.get('Via')!)![1]!), 'caller Via intact');
  t.equal(ok.toTag, 'uasp');
  const ack = caller.ack(inv, ok);
  ack.add('Route', `<sip:127.0.0.1:${h.edge.sipPort};lr>`);
  caller.send(ack);
  const ack2 = await uas.next((m) => m.method === 'ACK', 3000, 'ACK relayed');
  t.equal(ack2.uri, `sip:peer@127.0.0.1:${uas.port}`);
  const bye = caller.request('BYE', { callId: inv.callId, cseq: 2, toTag: 'uasp', uri: `sip:peer@127.0.0.1:${uas.port}`, headers: [['Route', `<sip:127.0.0.1:${h.edge.sipPort};lr>`]] });
  caller.send(bye);
  const bye2 = await uas.next((m) => m.method === 'BYE', 3000, 'BYE relayed');
  uas.send(uas.respond(bye2, 200));
  const byeOk = await caller.next((m) => m.status === 200 && m.cseq.method === 'BYE', 3000, '200 to BYE relayed');
  t.equal(byeOk.getAll('Via').length, 1);
  await sleep(50);
  t.equal(result?.finalStatus, 200, 'proxyRequest resolved with the final status');
  t.equal(result?.connected, true);
  const cont = h.proxy.frames.find((f) => f.tokens[12] === 'continue')!;
  t.equal(cont.tokens.length, 13, 'continue frame: 13 tokens');
  t.same([cont.tokens[3], cont.tokens[4], cont.tokens[10], cont.tokens[11]], ['OK', 'network', '', '']);
  const done = h.proxy.frames.find((f) => f.tokens[4] === 'done')!;
  t.equal(done.tokens.length, 5);
  const proxyCmd = h.proxy.frames.find((f) => f.tokens[1] === 'proxy')!;
  t.equal(proxyCmd.tokens.length, 11, '10 tokens + 1 extra destination');
  t.notOk(h.proxy.frames.some((f) => isSip(f) && /^(ACK|BYE)/.test(sipOf(f))), 'in-dialog requests not passed to the app');
});

t.test('proxyRequest: caller CANCEL is propagated, 487 relayed back', async (t) => {
  let result: any;
  const h = await harness((srf) => {
    srf.invite(async (req: any) => { result = await srf.proxyRequest(req, `sip:1001@127.0.0.1:${uas.port}`); });
  }, { routes: 1 });
  t.teardown(h.close);
  const uas = await SipPeer.udp(h.edge.sipPort);
  const caller = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => { uas.close(); caller.close(); });
  const inv = caller.request('INVITE', { callId: `p2-${randomUUID()}`, body: SDP });
  caller.send(inv);
  const fwd = await uas.next((m) => m.method === 'INVITE');
  t.notOk(fwd.has('Record-Route'), 'no Record-Route without remainInDialog');
  uas.send(uas.respond(fwd, 180, { toTag: 'r2' }));
  await caller.next((m) => m.status === 180);
  const cancel = SipMessage.request('CANCEL', inv.uri!);
  for (const n of ['Via', 'From', 'To', 'Call-ID']) cancel.add(n, inv.get(n)!);
  cancel.add('CSeq', '1 CANCEL');
  cancel.add('Content-Length', '0');
  caller.send(cancel);
  t.equal((await caller.next((m) => m.cseq.method === 'CANCEL')).status, 200, 'edge answers the CANCEL');
  const c2 = await uas.next((m) => m.method === 'CANCEL', 3000, 'CANCEL propagated');
  uas.send(uas.respond(c2, 200));
  uas.send(uas.respond(fwd, 487, { toTag: 'r2' }));
  await uas.next((m) => m.method === 'ACK', 3000, 'edge ACKs the 487');
  const r = await caller.next((m) => m.status === 487, 3000, '487 relayed');
  caller.send(caller.ack(inv, r));
  await sleep(50);
  t.equal(result?.finalStatus, 487);
  t.equal(result?.connected, false);
});

t.test('UAS dialog behind a record-routing proxy: app BYE follows the route set', async (t) => {
  let dialog: any;
  const h = await harness((srf) => {
    srf.invite(async (req: any, res: any) => { dialog = await srf.createUAS(req, res, { localSdp: APP_SDP }); });
  }, { routes: 1 });
  t.teardown(h.close);
  const caller = await SipPeer.udp(h.edge.sipPort);
  const proxy = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => { caller.close(); proxy.close(); });
  const rr = `<sip:127.0.0.1:${proxy.port};lr>, <sip:192.0.2.7;lr>`;
  const inv = caller.request('INVITE', { callId: `rr-${randomUUID()}`, body: SDP, headers: [['Record-Route', rr]] });
  caller.send(inv);
  const ok = await caller.next((m) => m.status === 200);
  t.equal(ok.get('Record-Route'), rr, 'Record-Route copied into the 2xx (§12.1.1)');
  caller.send(caller.ack(inv, ok));
  await sleep(50);
  const done = dialog.destroy();
  const bye = await proxy.next((m) => m.method === 'BYE', 3000, 'BYE at the first route hop');
  t.equal(bye.uri, `sip:peer@127.0.0.1:${caller.port}`, 'Request-URI = remote target');
  t.same(bye.getAll('Route'), [`<sip:127.0.0.1:${proxy.port};lr>`, '<sip:192.0.2.7;lr>'], 'route set in order');
  proxy.send(proxy.respond(bye, 200));
  await done;
});
