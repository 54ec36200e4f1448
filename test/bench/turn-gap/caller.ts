/**
 * A caller process of the turn-gap benchmark (forked by ./index.ts, IPC only, prints nothing
 * on stdout). The parent splits each round's calls over several of these processes.
 *
 * Why not the product's test caller (src/cli/caller.ts placeCall) per call: it runs one JS
 * timer per call for its 20 ms RTP, G.711-encodes and level-checks every frame as it goes,
 * copies every received packet into a record and decodes them again while it waits. One
 * process of those at 100 calls had an event-loop p99 of ~40 ms on this box, so the caller,
 * not the server, set the numbers. This caller does the same thing on the wire and keeps
 * the same definitions, with the work per packet cut to the bone:
 * - SIP: one UDP socket per process for all its dialogs (the product's SIP message codec,
 *   src/sip-edge/message.ts): INVITE (retransmitted, T1 = 500 ms, until a response), ACK,
 *   200 to the server's requests, BYE at the end;
 * - RTP: one socket per call; one drift-corrected 5 ms timer per process sends every call
 *   whose next 20 ms instant has come (each call keeps the 20 ms phase of its answer, so the
 *   process does not send all its streams in one burst); utterances are G.711-encoded and
 *   level-checked once up front, so a send only copies 160 bytes behind a 12-byte header;
 * - receive: the level of each received PCMU packet from a 256-entry table, nothing stored.
 *
 * Definitions (same as placeCall's): lastVoicedAt = send instant of our last frame with RMS
 * > 300 after the G.711 round trip; replyAt = arrival of the first reply packet with RMS >
 * 200; a reply ends after 250 ms without a voiced packet; 200–400 ms pause; next turn.
 * A turn fails when no voiced reply arrives within 5 s after our last frame.
 *
 * Messages (parent → child):
 *   {t:'run', port, turns, startAt, calls:[{index, offsetMs}], speech: Int16Array[]}
 *     place one call per entry at monotonic instant startAt + offsetMs
 *   {t:'exit'}
 * Child → parent:
 *   {t:'done', outcomes:[{callId, status, turns, failed}], loop:{p99, max}, cpuPct, sends, lateSends}
 *     loop = event-loop delay beyond the monitor's own period, ms; lateSends = packets that
 *     went out ≥ 5 ms after their 20 ms instant
 *
 * Every instant (lastVoicedAt, replyAt, startAt) is `nowMs()` of src/cli/rtp.ts,
 * process.hrtime → CLOCK_MONOTONIC, which is one system-wide clock: the parent, the server
 * and every caller process read the same time line.
 */
import { createSocket, type Socket } from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SipMessage, makeResponse, newBranch, newCallId, newTag, parseSipMessage, type Header } from '../../../src/sip-edge/message.ts';
import { g711Decode, g711Encode, nowMs, rmsLevel } from '../../../src/cli/rtp.ts';

/** lastVoicedStreamMs: end of our last voiced frame as a position in our RTP stream (packets × 20 ms since the first) */
export interface CallerTurn { k: number; utt: number; lastVoicedAt: number; lastVoicedStreamMs: number; replyAt: number; gapMs: number; marker: boolean }
/** answeredAt: monotonic instant of the 2xx (0 if none) */
export interface CallOutcome { callId: string; status: number; answeredAt: number; turns: CallerTurn[]; failed: number }
export interface RunMsg { t: 'run'; port: number; turns: number; startAt: number; calls: { index: number; offsetMs: number }[]; speech: Int16Array[] }
export interface DoneMsg { t: 'done'; outcomes: CallOutcome[]; loop: { p99: number; max: number }; cpuPct: number; lateSends: number; sends: number }

const r1 = (x: number): number => Math.round(x * 10) / 10;
/** The loop monitor's timer period; a loop that never waits reads this much, so it is subtracted. */
const LOOP_RES_MS = 2;
const PTIME = 20;
const TICK = 5;
const SENT_VOICED_RMS = 300;
const REPLY_VOICED_RMS = 200;
const REPLY_SILENCE_MS = 250;
const REPLY_TIMEOUT_MS = 5000;
const LA = '127.0.0.1';
const SILENCE = Buffer.alloc(160, 0xff);
/** µ-law byte → sample² */
const ULAW_SQ = new Float64Array(256);
for (let b = 0; b < 256; b++) ULAW_SQ[b] = g711Decode(Uint8Array.of(b), 0)[0]! ** 2;

interface Utt { frames: Buffer[]; voiced: boolean[] }
function prepare(pcm: Int16Array): Utt {
  const frames: Buffer[] = [];
  const voiced: boolean[] = [];
  for (let i = 0; i < pcm.length; i += 160) {
    const f = new Int16Array(160);
    f.set(pcm.subarray(i, Math.min(i + 160, pcm.length)));
    const enc = g711Encode(f, 0);
    frames.push(enc);
    voiced.push(rmsLevel(g711Decode(enc, 0)) > SENT_VOICED_RMS);
  }
  return { frames, voiced };
}

type Phase = 'setup' | 'pause' | 'talk' | 'wait' | 'reply' | 'done';

class Call {
  readonly callId = newCallId();
  readonly fromTag = newTag();
  toHdr: string;
  remoteTarget: string;
  sipDest: { host: string; port: number };
  status = 0;
  media?: { address: string; port: number };
  ack?: SipMessage;
  phase: Phase = 'setup';
  answeredAt = 0;
  nextSend = 0;
  seq = Math.floor(Math.random() * 0x10000);
  ts = Math.floor(Math.random() * 0x100000000);
  ssrc = Math.floor(Math.random() * 0x100000000);
  marker = true;
  k = 0;
  utt = 0;
  frame = 0;
  phaseUntil = 0;
  lastVoicedAt = 0;
  lastVoicedStreamMs = 0;
  sentPackets = 0;
  talkEndAt = 0;
  replyAt = 0;
  replyMarker = false;
  lastReplyVoiced = 0;
  serverBye = false;
  readonly turns: CallerTurn[] = [];
  failed = 0;
  readonly ended: Promise<void>;
  end!: () => void;
  constructor(readonly index: number, readonly rtp: Socket, readonly requestUri: string, port: number) {
    this.toHdr = `<${requestUri}>`;
    this.remoteTarget = requestUri;
    this.sipDest = { host: LA, port };
    this.ended = new Promise((r) => (this.end = r));
  }
}

function hostPort(uri: string, def: { host: string; port: number }): { host: string; port: number } {
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;?>]+)(?::(\d+))?/.exec(uri);
  return m ? { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 5060 } : def;
}

async function bindUdp(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, LA, () => {
      s.off('error', reject);
      resolve();
    });
  });
  return s;
}

async function run(m: RunMsg): Promise<DoneMsg> {
  const utts = m.speech.map(prepare);
  const sip = await bindUdp();
  const lp = sip.address().port;
  const calls = new Map<string, Call>();
  const live = new Set<Call>();
  const via = (branch: string): string => `SIP/2.0/UDP ${LA}:${lp};branch=${branch};rport`;
  const sendSip = (msg: SipMessage, to: { host: string; port: number }): void => {
    sip.send(msg.toBuffer(), to.port, to.host);
  };
  const headers = (c: Call, branch: string, cseq: string): Header[] => [
    { name: 'Via', value: via(branch) },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: `<sip:+15551230001@${LA}>;tag=${c.fromTag}` },
    { name: 'To', value: c.toHdr },
    { name: 'Call-ID', value: c.callId },
    { name: 'CSeq', value: cseq },
  ];
  /** pending client transactions: `${callId}|${method}` → on final response */
  const pending = new Map<string, { timer: NodeJS.Timeout; onResponse: (res: SipMessage) => void }>();
  const request = (c: Call, method: string, msg: SipMessage, onResponse: (res: SipMessage) => void, giveUpMs: number): void => {
    const key = `${c.callId}|${method}`;
    let interval = 500;
    let waited = 0;
    const again = (): NodeJS.Timeout => setTimeout(() => {
      waited += interval;
      if (waited >= giveUpMs) {
        pending.delete(key);
        onResponse(makeResponse(msg, 408));
        return;
      }
      sendSip(msg, c.sipDest);
      interval *= 2;
      entry.timer = again();
    }, interval);
    const entry = { timer: again(), onResponse };
    pending.set(key, entry);
    sendSip(msg, c.sipDest);
  };

  const finish = (c: Call): void => {
    if (c.phase === 'done') return;
    c.phase = 'done';
    live.delete(c);
    if (c.serverBye || !c.status || c.status >= 300) {
      c.rtp.close();
      c.end();
      return;
    }
    const branch = newBranch();
    const bye = SipMessage.request('BYE', c.remoteTarget, [...headers(c, branch, '2 BYE'), { name: 'Content-Length', value: '0' }]);
    request(c, 'BYE', bye, () => {
      c.rtp.close();
      c.end();
    }, 8000);
  };

  sip.on('message', (buf, rinfo) => {
    let msg: SipMessage;
    try {
      msg = parseSipMessage(buf);
    } catch {
      return;
    }
    const c = calls.get(msg.get('Call-ID') ?? '');
    if (msg.isRequest) {
      if (msg.method === 'ACK') return;
      const res = makeResponse(msg, msg.method === 'BYE' || msg.method === 'OPTIONS' || msg.method === 'INFO' || msg.method === 'NOTIFY' ? 200 : 501);
      sip.send(res.toBuffer(), rinfo.port, rinfo.address);
      if (msg.method === 'BYE' && c && !c.serverBye) {
        c.serverBye = true;
        finish(c);
      }
      return;
    }
    if (!c) return;
    const status = msg.status ?? 0;
    const method = msg.cseq.method;
    if (method === 'INVITE' && status >= 200 && c.status) {
      if (status < 300 && c.ack) sendSip(c.ack, c.sipDest); // 2xx retransmission
      return;
    }
    const p = pending.get(`${c.callId}|${method}`);
    if (!p) return;
    if (method === 'INVITE' && status < 200) {
      clearTimeout(p.timer); // a provisional answer stops INVITE retransmissions
      return;
    }
    clearTimeout(p.timer);
    pending.delete(`${c.callId}|${method}`);
    p.onResponse(msg);
  });

  const place = (index: number): Promise<Call> => bindUdp().then((rtp) => {
    const c = new Call(index, rtp, `sip:18005550100@${LA}:${m.port}`, m.port);
    calls.set(c.callId, c);
    rtp.on('message', (b: Buffer) => {
      const at = nowMs();
      if (b.length < 12 + 160 || (b[1]! & 0x7f) !== 0 || (c.phase !== 'wait' && c.phase !== 'reply')) return;
      const off = 12 + (b[0]! & 0x0f) * 4;
      let sq = 0;
      for (let i = off; i < b.length; i++) sq += ULAW_SQ[b[i]!]!;
      if (Math.sqrt(sq / (b.length - off)) <= REPLY_VOICED_RMS) return;
      if (c.phase === 'wait') {
        c.phase = 'reply';
        c.replyAt = at;
        c.replyMarker = (b[1]! & 0x80) !== 0;
      }
      c.lastReplyVoiced = at;
    });
    const branch = newBranch();
    const sdp = [
      'v=0', `o=caller ${index} ${index} IN IP4 ${LA}`, 's=turn-gap caller', `c=IN IP4 ${LA}`, 't=0 0',
      `m=audio ${rtp.address().port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16',
      'a=ptime:20', 'a=sendrecv', '',
    ].join('\r\n');
    const invite = SipMessage.request('INVITE', c.requestUri, [
      ...headers(c, branch, '1 INVITE'),
      { name: 'Contact', value: `<sip:caller@${LA}:${lp}>` },
      { name: 'Content-Type', value: 'application/sdp' },
    ], sdp);
    request(c, 'INVITE', invite, (res) => {
      const status = res.status ?? 0;
      c.status = status;
      if (status >= 300) {
        if (status !== 408) sendSip(SipMessage.request('ACK', c.requestUri, [...headers(c, branch, '1 ACK').map((h) => (h.name === 'To' ? { name: 'To', value: res.get('To') ?? c.toHdr } : h))]), c.sipDest);
        finish(c);
        return;
      }
      c.toHdr = res.get('To') ?? c.toHdr;
      const contact = /<([^>]+)>/.exec(res.get('Contact') ?? '')?.[1];
      if (contact) {
        c.remoteTarget = contact;
        c.sipDest = hostPort(contact, c.sipDest);
      }
      c.ack = SipMessage.request('ACK', c.remoteTarget, headers(c, newBranch(), '1 ACK'));
      sendSip(c.ack, c.sipDest);
      const body = res.body.toString('utf8');
      const port = Number(/^m=audio (\d+)/m.exec(body)?.[1]);
      const address = /^c=IN IP4 ([^\s/]+)/m.exec(body)?.[1] ?? LA;
      if (!port) {
        c.failed = m.turns;
        finish(c);
        return;
      }
      c.media = { address, port };
      const now = nowMs();
      c.answeredAt = now;
      c.phase = 'pause';
      c.phaseUntil = now + 300; // media up, jitter buffer primed with silence
      c.nextSend = now;
      c.utt = (index * m.turns) % utts.length;
      live.add(c);
    }, 32_000);
    return c;
  });

  // ---- the shared RTP clock -------------------------------------------------------------
  let sends = 0;
  let lateSends = 0;
  const t0 = nowMs();
  let tickNo = 0;
  let stopped = false;
  const sendFrame = (c: Call, payload: Buffer): void => {
    // a fresh buffer per packet: dgram may still hold the last one (a send queued on EAGAIN)
    const p = Buffer.allocUnsafe(12 + 160);
    p[0] = 0x80;
    p[1] = (c.marker ? 0x80 : 0) | 0;
    p.writeUInt32BE(c.ssrc >>> 0, 8);
    p.writeUInt16BE(c.seq, 2);
    p.writeUInt32BE(c.ts >>> 0, 4);
    payload.copy(p, 12);
    c.rtp.send(p, c.media!.port, c.media!.address);
    c.marker = false;
    c.seq = (c.seq + 1) & 0xffff;
    c.ts = (c.ts + 160) >>> 0;
    c.sentPackets++;
  };
  const tick = (): void => {
    if (stopped) return;
    const now = nowMs();
    for (const c of live) {
      while (c.phase !== 'done' && c.nextSend <= now) {
        if (now - c.nextSend >= TICK) lateSends++;
        sends++;
        c.nextSend += PTIME;
        const t = nowMs();
        if (c.phase === 'wait' && t - c.talkEndAt > REPLY_TIMEOUT_MS) {
          c.failed++;
          nextTurn(c, t);
        } else if (c.phase === 'reply' && t - c.lastReplyVoiced >= REPLY_SILENCE_MS) {
          c.turns.push({ k: c.k, utt: c.utt, lastVoicedAt: c.lastVoicedAt, lastVoicedStreamMs: c.lastVoicedStreamMs, replyAt: c.replyAt, gapMs: c.replyAt - c.lastVoicedAt, marker: c.replyMarker });
          nextTurn(c, t);
        }
        if (c.phase === 'pause' && t >= c.phaseUntil) {
          if (c.k >= m.turns) {
            finish(c);
            break;
          }
          c.phase = 'talk';
          c.frame = 0;
        }
        if (c.phase !== 'talk') {
          sendFrame(c, SILENCE);
          continue;
        }
        const u = utts[c.utt]!;
        sendFrame(c, u.frames[c.frame]!);
        if (u.voiced[c.frame]) {
          c.lastVoicedAt = nowMs();
          c.lastVoicedStreamMs = c.sentPackets * PTIME;
        }
        if (++c.frame >= u.frames.length) {
          c.phase = 'wait';
          c.talkEndAt = t;
        }
      }
    }
    tickNo++;
    setTimeout(tick, Math.max(0, t0 + tickNo * TICK - nowMs()));
  };
  const nextTurn = (c: Call, now: number): void => {
    c.k++;
    c.utt = (c.index * m.turns + c.k) % utts.length;
    c.phase = 'pause';
    c.phaseUntil = now + 200 + Math.random() * 200;
  };
  tick();

  const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const w0 = nowMs();
  const placed = await Promise.all(m.calls.map(async (e) => {
    await new Promise((r) => setTimeout(r, Math.max(0, m.startAt + e.offsetMs - nowMs())));
    const c = await place(e.index);
    await c.ended;
    return c;
  }));
  loop.disable();
  stopped = true;
  const cpu = process.cpuUsage(cpu0);
  for (const p of pending.values()) clearTimeout(p.timer);
  sip.close();
  return {
    t: 'done',
    outcomes: placed.map((c) => ({ callId: c.callId, status: c.status, answeredAt: c.answeredAt, turns: c.turns, failed: c.status === 200 ? c.failed : m.turns })),
    loop: { p99: r1(Math.max(0, loop.percentile(99) / 1e6 - LOOP_RES_MS)), max: r1(Math.max(0, loop.max / 1e6 - LOOP_RES_MS)) },
    cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / (nowMs() - w0)) * 100),
    lateSends,
    sends,
  };
}

process.on('message', (msg: RunMsg | { t: 'exit' }) => {
  if (msg.t === 'exit') process.exit(0);
  if (msg.t === 'run') void run(msg).then((d) => process.send?.(d));
});
process.on('disconnect', () => process.exit(0));
process.send?.({ t: 'ready' });
