/**
 * Reliable provisional responses (RFC 3262) at the built-in edge, with the real drachtio-srf
 * client: RSeq, Contact and Require on an app-sent reliable 1xx, retransmission until the
 * PRACK, the 2xx held until the PRACK, the PRACK delivered to the app (srf answers it 200
 * and calls the res.send PRACK callback), 481 for PRACKs matching nothing, 503 Reliable
 * Response Time-Out without a PRACK, NOK when the caller does not support 100rel, and an
 * UPDATE in the early dialog reaching the app.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { SipPeer, harness, sleep, SDP, APP_SDP } from './sip-edge-helpers.ts';
import { SUPPORTED_OPTION_TAGS } from '../../src/sip-edge/index.ts';
import { SipMessage } from '../../src/sip-edge/message.ts';

/** A PRACK from the caller for the reliable provisional `prov` of `inv`. */
function prack(peer: SipPeer, inv: SipMessage, prov: SipMessage, o: { cseq?: number; rseq?: string; rack?: string } = {}): SipMessage {
  const uri = (prov.get('Contact') ?? '').replace(/^.*<([^>]+)>.*$/, '$1');
  const m = SipMessage.request('PRACK', uri);
  m.add('Via', peer.via);
  m.add('From', inv.get('From')!);
  m.add('To', prov.get('To')!);
  m.add('Call-ID', inv.callId);
  m.add('CSeq', `${o.cseq ?? 2} PRACK`);
  m.add('RAck', o.rack ?? `${o.rseq ?? prov.get('RSeq')} ${inv.cseq.seq} INVITE`);
  m.add('Max-Forwards', '70');
  m.add('Content-Length', '0');
  return m;
}

t.test('100rel and timer are supported option tags', async (t) => {
  t.ok(SUPPORTED_OPTION_TAGS.has('100rel'));
  t.ok(SUPPORTED_OPTION_TAGS.has('timer'));
});

t.test('reliable 183 with SDP: RSeq, retransmitted until PRACK, PRACK to the app (200, callback), then the held 200', async (t) => {
  const events: string[] = [];
  let prackSeen: any;
  const h = await harness((srf) => {
    srf.invite((req: any, res: any) => {
      res.send(183, { headers: { Require: '100rel', 'Content-Type': 'application/sdp' }, body: APP_SDP },
        (err: unknown, msg: any) => events.push(err ? `183-error:${err}` : `183-sent:${msg.get('RSeq')}`),
        (p: any) => { prackSeen = p; events.push('prack-callback'); });
      srf.createUAS(req, res, { localSdp: APP_SDP }).then((d: any) => {
        events.push('answered');
        d.on('destroy', () => events.push('destroy'));
      }, (e: Error) => events.push(`uas-error:${e.message}`));
    });
  }, { routes: 1, timers: { T1: 100 } });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());

  const inv = peer.request('INVITE', { callId: `rel-${randomUUID()}`, body: SDP, headers: [['Supported', '100rel, timer']] });
  peer.send(inv);
  const p1 = await peer.next((m) => m.status === 183, 3000, 'reliable 183');
  t.match(p1.get('Require') ?? '', /100rel/, '183 requires 100rel');
  const rseq = Number(p1.get('RSeq'));
  t.ok(rseq >= 1 && rseq < 2 ** 31, `RSeq ${rseq} in 1..2^31-1`);
  t.ok(p1.get('Contact'), 'reliable 1xx carries a Contact');
  t.ok(p1.toTag, 'To tag');
  t.equal(p1.body.toString(), APP_SDP, 'with the SDP');
  const again = await peer.next((m) => m.status === 183, 1000, 'retransmitted 183');
  t.equal(again.get('RSeq'), String(rseq), 'same RSeq on the retransmission');
  t.ok(await peer.none((m) => m.status === 200 && m.cseq.method === 'INVITE', 200), 'no 200 before the PRACK');
  t.notOk(events.includes('answered'), 'createUAS still pending');

  peer.send(prack(peer, inv, p1));
  const pOk = await peer.next((m) => m.cseq.method === 'PRACK', 3000, '200 to PRACK');
  t.equal(pOk.status, 200, 'PRACK answered 200 (by drachtio-srf through the edge)');
  const ok = await peer.next((m) => m.status === 200 && m.cseq.method === 'INVITE', 3000, 'the held 200');
  t.equal(ok.toTag, p1.toTag, 'same dialog');
  t.equal(ok.body.toString(), APP_SDP);
  t.notOk(ok.get('RSeq'), 'no RSeq on the final');
  await sleep(50);
  t.same(events.slice(0, 3), [`183-sent:${rseq}`, 'prack-callback', 'answered'], 'srf: 183 confirmed, PRACK callback, then the dialog');
  t.equal(prackSeen?.get('RAck'), `${rseq} 1 INVITE`);
  const retrans = peer.inbox.filter((m) => m.status === 183).length;
  await sleep(400);
  t.equal(peer.inbox.filter((m) => m.status === 183).length, retrans, 'retransmissions stop after the PRACK');

  // the same PRACK again (new transaction): matches nothing any more
  peer.send(prack(peer, inv, p1, { cseq: 3 }));
  t.equal((await peer.next((m) => m.cseq.method === 'PRACK' && m.cseq.seq === 3)).status, 481, 'second PRACK → 481');

  peer.send(peer.ack(inv, ok));
  const bye = peer.request('BYE', { callId: inv.callId, cseq: 4, toTag: ok.toTag });
  peer.send(bye);
  t.equal((await peer.next((m) => m.cseq.method === 'BYE')).status, 200);

  // frames: the PRACK reached the app in the INVITE's dialog, before the 200 was confirmed
  const fr = h.proxy.frames;
  const iPrack = fr.findIndex((f) => f.dir === 'edge' && f.tokens[1] === 'sip' && (f.sip ?? '').startsWith('PRACK'));
  const i200 = fr.findIndex((f) => f.dir === 'edge' && f.tokens[13] === 'Msg sent:' && (f.sip ?? '').startsWith('SIP/2.0 200 OK') && /INVITE/.test((f.sip ?? '').split('\r\n').find((l) => /^cseq:/i.test(l)) ?? ''));
  t.ok(iPrack >= 0 && i200 > iPrack, 'PRACK frame before the 200 confirmation');
  const iPrack200 = fr.findIndex((f) => f.dir === 'edge' && f.tokens[13] === 'Msg sent:' && /PRACK/.test((f.sip ?? '').split('\r\n').find((l) => /^cseq:/i.test(l)) ?? ''));
  t.ok(iPrack200 > iPrack && i200 > iPrack200, 'the held 200 went out after the app\'s 200 to the PRACK');
  t.equal(fr[iPrack]!.tokens[9], `${inv.callId};from-tag=${peer.tag}`, 'PRACK carries the dialog id');
});

t.test('PRACKs that match nothing get 481: wrong RSeq, wrong CSeq in RAck, no early dialog', async (t) => {
  const h = await harness((srf) => {
    srf.invite((req: any, res: any) => {
      res.send(180, { headers: { Require: '100rel' } });
      setTimeout(() => { if (!res.finalResponseSent) res.send(486); }, 1500);
    });
  }, { routes: 1, timers: { T1: 200 } });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const inv = peer.request('INVITE', { callId: `bad-${randomUUID()}`, body: SDP, headers: [['Supported', '100rel']] });
  peer.send(inv);
  const p1 = await peer.next((m) => m.status === 180, 3000, 'reliable 180');
  const rseq = Number(p1.get('RSeq'));
  peer.send(prack(peer, inv, p1, { rseq: String(rseq + 1) }));
  t.equal((await peer.next((m) => m.cseq.method === 'PRACK' && m.cseq.seq === 2)).status, 481, 'RSeq not outstanding → 481');
  peer.send(prack(peer, inv, p1, { cseq: 3, rack: `${rseq} 7 INVITE` }));
  const r3 = await peer.next((m) => m.cseq.method === 'PRACK' && m.cseq.seq === 3);
  t.equal(r3.status, 481, 'RAck CSeq is not the INVITE\'s → 481');
  t.match(r3.get('Warning') ?? '', /matches no unacknowledged reliable provisional/);
  const stray = peer.request('PRACK', { callId: `none-${randomUUID()}`, cseq: 2, toTag: 'nosuchtag', headers: [['RAck', '1 1 INVITE']] });
  peer.send(stray);
  t.equal((await peer.next((m) => m.callId === stray.callId)).status, 481, 'PRACK outside any dialog → 481');
  // the right one still works; then the app's 486
  peer.send(prack(peer, inv, p1, { cseq: 4 }));
  t.equal((await peer.next((m) => m.cseq.method === 'PRACK' && m.cseq.seq === 4)).status, 200);
  const r486 = await peer.next((m) => m.status === 486, 3000);
  peer.send(peer.ack(inv, r486));
});

t.test('INVITE requiring 100rel: the app\'s plain 180 goes reliably; no PRACK within 64*T1 → 503 Reliable Response Time-Out', async (t) => {
  let uasError = '';
  const h = await harness((srf) => {
    srf.invite((req: any, res: any) => {
      res.send(180);
      setTimeout(() => {
        srf.createUAS(req, res, { localSdp: APP_SDP }).catch((e: Error) => { uasError = e.message || 'failed'; });
      }, 100);
    });
  }, { routes: 1, timers: { T1: 25 } });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const inv = peer.request('INVITE', { callId: `req-${randomUUID()}`, body: SDP, headers: [['Require', '100rel']] });
  peer.send(inv);
  const p1 = await peer.next((m) => m.status === 180, 3000);
  t.ok(p1.get('RSeq'), 'made reliable: RSeq');
  t.match(p1.get('Require') ?? '', /100rel/);
  const r503 = await peer.next((m) => m.cseq.method === 'INVITE' && (m.status ?? 0) >= 200, 4000, 'final after 64*T1');
  t.equal(r503.status, 503);
  t.equal(r503.reason, 'Reliable Response Time-Out');
  t.equal(r503.toTag, p1.toTag, 'in the early dialog');
  t.ok(peer.inbox.filter((m) => m.status === 180).length >= 4, 'the 180 was retransmitted meanwhile');
  peer.send(peer.ack(inv, r503));
  await sleep(100);
  t.ok(uasError, `the held 200 failed for the app (${uasError})`);
  t.equal(h.edge.dialogCount, 0, 'no dialog');
});

t.test('caller without 100rel: a reliable provisional is refused (NOK), the call goes on; early UPDATE reaches the app', async (t) => {
  let relError = '';
  let updates = 0;
  const h = await harness((srf) => {
    srf.invite((req: any, res: any) => {
      req.on('update', (_u: any, ures: any) => { updates++; ures.send(200); });
      res.send(183, { headers: { Require: '100rel' }, body: APP_SDP }, (err: unknown) => { relError = String(err ?? ''); });
      setTimeout(() => res.send(180), 50);
      setTimeout(() => srf.createUAS(req, res, { localSdp: APP_SDP }).catch(() => undefined), 600);
    });
  }, { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const inv = peer.request('INVITE', { callId: `norel-${randomUUID()}`, body: SDP });
  peer.send(inv);
  const p = await peer.next((m) => (m.status ?? 0) > 100 && (m.status ?? 0) < 200, 3000);
  t.equal(p.status, 180, 'the 183 never went out; the 180 did');
  t.notOk(p.get('RSeq'), 'unreliable');
  t.match(relError, /does not support 100rel/, 'srf got the NOK');
  const upd = peer.request('UPDATE', { callId: inv.callId, cseq: 2, toTag: p.toTag });
  peer.send(upd);
  const ru = await peer.next((m) => m.cseq.method === 'UPDATE', 3000);
  t.equal(ru.status, 200, 'early UPDATE delivered to the app and answered');
  t.equal(updates, 1);
  const ok = await peer.next((m) => m.status === 200 && m.cseq.method === 'INVITE', 3000);
  peer.send(peer.ack(inv, ok));
  peer.send(peer.request('BYE', { callId: inv.callId, cseq: 3, toTag: ok.toTag }));
  t.equal((await peer.next((m) => m.cseq.method === 'BYE')).status, 200);
});
