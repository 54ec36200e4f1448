/**
 * The test caller behind `voice-agent call` and the end-to-end tests: places one SIP call
 * over UDP to a SIP edge, answers the media with its own paced RTP, records every RTP packet
 * it receives (with arrival times), and hangs up after a given time, when its script is done,
 * or answers the server's BYE. One options object in, one plain result object out.
 *
 * A `script` drives a conversation: speak a turn (`ctl.say(pcm)`), key digits
 * (`ctl.dtmf('12345#')`), wait until the agent has spoken and gone quiet
 * (`ctl.waitForAgent()`, which also measures the turn gap: our last voiced packet sent →
 * the agent's first voiced packet received).
 *
 * It uses the product's SIP message codec (src/sip-edge/message.ts) and its own, independent
 * G.711 and RTP code (src/cli/rtp.ts).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import {
  SipMessage, makeResponse, newBranch, newCallId, newTag, parseSipMessage, type Header,
} from '../sip-edge/message.ts';
import { RtpRecorder, RtpSender, g711Decode, g711Encode, nowMs, rmsLevel, type RtpRecord } from './rtp.ts';

export type { RtpRecord } from './rtp.ts';

/** A codec the caller can offer. */
export interface OfferCodec {
  pt: number;
  /** rtpmap encoding name, e.g. PCMU, PCMA, G729, telephone-event. */
  name: string;
  rate?: number;
  fmtp?: string;
}

const CODECS: Record<'PCMU' | 'PCMA', OfferCodec> = {
  PCMU: { pt: 0, name: 'PCMU' },
  PCMA: { pt: 8, name: 'PCMA' },
};
const TELEPHONE_EVENT: OfferCodec = { pt: 101, name: 'telephone-event', fmtp: '0-16' };

export interface CallOptions {
  /** SIP edge address. @defaultValue '127.0.0.1' */
  host?: string;
  /** SIP edge port (UDP). */
  port: number;
  /** Dialed number (Request-URI user). @defaultValue '18005550100' */
  to?: string;
  /** Caller number (From user). @defaultValue '+15551230001' */
  from?: string;
  /** Codec to offer (with telephone-event). @defaultValue 'PCMU' */
  codec?: 'PCMU' | 'PCMA';
  /** Offer exactly these codecs instead of `codec` + telephone-event (e.g. G.729 only). */
  offer?: OfferCodec[];
  /** What to send: µ/A-law silence, nothing, or this 8 kHz PCM (then silence). @defaultValue 'silence' */
  send?: 'silence' | 'none' | Int16Array;
  /** Hang up (BYE) this long after the answer; undefined = wait for the server's BYE. */
  hangupAfterMs?: number;
  /** Give up waiting for the server's BYE after this long (then send BYE, hangup = 'timeout'). @defaultValue 30000 */
  maxCallMs?: number;
  /** Send CANCEL this long after the first provisional response. */
  cancelAfterMs?: number;
  /** Give up if no final response arrives within this time. @defaultValue 10000 */
  setupTimeoutMs?: number;
  /** Local address for SIP and RTP. @defaultValue '127.0.0.1' */
  localAddress?: string;
  /** Local RTP port. @defaultValue 0 (any) */
  rtpPort?: number;
  /** Extra headers on the INVITE. */
  headers?: Header[];
  /** Progress callback (for a CLI): `invite`, `100`, `200`, `ack`, `rtp-first`, `bye`… */
  onEvent?: (event: string, detail?: unknown) => void;
  /**
   * Drive the answered call (speak, key digits, wait for the agent). The caller hangs up
   * when it resolves, unless the server hung up first (then every wait resolves at once).
   * `maxCallMs` still bounds the call.
   */
  script?: (ctl: CallControl) => Promise<void>;
}

/** One stretch of agent speech as the caller heard it. */
export interface AgentSegment {
  /** decoded audio from the first voiced packet to the start of the closing silence */
  pcm: Int16Array;
  /** monotonic ms of the first / last voiced packet received */
  startMs: number;
  endMs: number;
  /** our last voiced packet sent → the agent's first voiced packet, when we had spoken before */
  gapMs?: number;
  /** the agent said nothing before the timeout (or the call ended) */
  timedOut: boolean;
}

/** What a script can do on an answered call. */
export interface CallControl {
  /** Send this 8 kHz PCM now (behind anything queued); resolves when its last packet went out. */
  say(pcm: Int16Array): Promise<void>;
  /** Send RFC 4733 digits; resolves when sent. */
  dtmf(digits: string): Promise<void>;
  /**
   * Wait until the agent has spoken (voiced audio after this call, or after our last turn)
   * and then been quiet for `silenceMs`.
   * @param o.silenceMs  @defaultValue 1500
   * @param o.timeoutMs  @defaultValue 20000
   */
  waitForAgent(o?: { silenceMs?: number; timeoutMs?: number }): Promise<AgentSegment>;
  /** Wait `ms`. */
  pause(ms: number): Promise<void>;
  /** The server hung up (BYE received). */
  readonly serverHungUp: boolean;
  /** Resolves when the server's BYE arrives. */
  readonly serverBye: Promise<void>;
}

/** Received packet levels above this RMS count as agent speech. @defaultValue 200 */
export const AGENT_VOICED_RMS = 200;

export interface CallResult {
  callId: string;
  /** Final response status to the INVITE (0 if none arrived). */
  status: number;
  reason: string;
  /** Provisional statuses received, in order. */
  provisional: number[];
  /** The final response to the INVITE. */
  finalResponse?: SipMessage;
  /** The answer SDP (2xx only). */
  answerSdp?: string;
  /** Payload type of the answered audio codec. */
  payloadType?: number;
  /** Where the server wants RTP. */
  remoteMedia?: { address: string; port: number };
  /** INVITE sent → final response, ms. */
  setupMs: number;
  /** Who ended the call. */
  hangup: 'caller' | 'server' | 'timeout' | 'none';
  /** The server's BYE (when it hung up) and the moment it arrived (ms after the answer). */
  serverBye?: SipMessage;
  byeAfterAnswerMs?: number;
  /** Status of the final response to our BYE / CANCEL, if we sent one. */
  byeStatus?: number;
  cancelStatus?: number;
  /** Every RTP packet received, in arrival order. */
  packets: RtpRecord[];
  /** Received audio of the answered codec decoded to 8 kHz PCM (arrival order). */
  pcm: Int16Array;
  /** RTP packets we sent. */
  sentPackets: number;
  /** Our local SIP and RTP ports. */
  localSipPort: number;
  localRtpPort: number;
  /** What {@link CallControl.waitForAgent} returned, in order (script calls only). */
  segments: AgentSegment[];
  /** The script threw (the call was hung up). */
  scriptError?: Error;
}

/** Minimal SDP reading: connection address, audio port and payload types. */
export function parseAnswerSdp(sdp: string): { address?: string; port?: number; pts: number[]; rtpmap: Map<number, string> } {
  let address: string | undefined;
  let port: number | undefined;
  let pts: number[] = [];
  const rtpmap = new Map<number, string>();
  let inAudio = false;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      inAudio = line.startsWith('m=audio ');
      if (inAudio) {
        const parts = line.slice(2).split(/\s+/);
        port = Number(parts[1]);
        pts = parts.slice(3).filter((x) => x !== '').map(Number);
      }
    } else if (line.startsWith('c=IN IP4 ') && (address === undefined || inAudio)) {
      address = line.slice('c=IN IP4 '.length).trim().split('/')[0];
    } else if (inAudio && line.startsWith('a=rtpmap:')) {
      const m = /^a=rtpmap:(\d+)\s+([^/\s]+)/.exec(line);
      if (m) rtpmap.set(Number(m[1]), m[2]!.toUpperCase());
    }
  }
  return { address, port, pts, rtpmap };
}

function buildSdp(addr: string, rtpPort: number, codecs: OfferCodec[]): string {
  const id = Math.floor(Math.random() * 1e9);
  const lines = [
    'v=0',
    `o=caller ${id} ${id} IN IP4 ${addr}`,
    's=voice-agent test caller',
    `c=IN IP4 ${addr}`,
    't=0 0',
    `m=audio ${rtpPort} RTP/AVP ${codecs.map((c) => c.pt).join(' ')}`,
  ];
  for (const c of codecs) {
    lines.push(`a=rtpmap:${c.pt} ${c.name}/${c.rate ?? 8000}`);
    if (c.fmtp) lines.push(`a=fmtp:${c.pt} ${c.fmtp}`);
  }
  lines.push('a=ptime:20', 'a=sendrecv');
  return lines.join('\r\n') + '\r\n';
}

function uriOf(nameAddr: string | undefined): string | undefined {
  if (!nameAddr) return undefined;
  const m = /<([^>]+)>/.exec(nameAddr);
  return (m ? m[1]! : nameAddr.split(';')[0]!).trim();
}

/** Target host/port of a SIP URI (falls back to `def`). */
function hostPort(uri: string | undefined, def: { host: string; port: number }): { host: string; port: number } {
  if (!uri) return def;
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;?>]+)(?::(\d+))?/.exec(uri);
  if (!m) return def;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 5060 };
}

interface ClientTxn {
  branch: string;
  method: string;
  onResponse: (res: SipMessage) => void;
  stop: () => void;
}

/**
 * Place one call and return what happened. Rejects only on local errors (socket bind);
 * SIP failures are reported in the result (`status`, `hangup`).
 */
export async function placeCall(opts: CallOptions): Promise<CallResult> {
  const host = opts.host ?? '127.0.0.1';
  const la = opts.localAddress ?? '127.0.0.1';
  const emit = opts.onEvent ?? ((): void => {});
  const sip = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sip.once('error', reject);
    sip.bind(0, la, () => resolve());
  });
  const lp = sip.address().port;
  const rec = await RtpRecorder.bind(opts.rtpPort ?? 0, la);
  const codecs = opts.offer ?? [CODECS[opts.codec ?? 'PCMU'], TELEPHONE_EVENT];

  const to = opts.to ?? '18005550100';
  const from = opts.from ?? '+15551230001';
  const callId = newCallId();
  const fromTag = newTag();
  const requestUri = `sip:${to}@${host}:${opts.port}`;
  const fromHdr = `<sip:${from}@${la}>;tag=${fromTag}`;
  let toHdr = `<sip:${to}@${host}:${opts.port}>`;
  let remoteTarget = requestUri;
  let dest = { host, port: opts.port };
  const txns = new Map<string, ClientTxn>();

  const send = (m: SipMessage, to2 = dest): void => {
    sip.send(m.toBuffer(), to2.port, to2.host);
  };
  const via = (branch: string): string => `SIP/2.0/UDP ${la}:${lp};branch=${branch};rport`;

  /** Send a request as a client transaction with RFC 3261 retransmissions (T1 = 500 ms). */
  const request = (m: SipMessage, branch: string, invite: boolean, onResponse: (res: SipMessage) => void): ClientTxn => {
    let interval = 500;
    let timer: NodeJS.Timeout | undefined;
    let gotAny = false;
    const retrans = (): void => {
      timer = setTimeout(() => {
        if (gotAny && invite) return;
        send(m);
        interval = invite ? interval * 2 : Math.min(interval * 2, 4000);
        retrans();
      }, interval);
    };
    const txn: ClientTxn = {
      branch, method: m.method!,
      onResponse: (res) => {
        gotAny = true;
        if ((res.status ?? 0) >= 200 || invite) {
          if (timer) clearTimeout(timer);
        }
        onResponse(res);
      },
      stop: () => timer && clearTimeout(timer),
    };
    txns.set(`${branch}|${m.method}`, txn);
    send(m);
    retrans();
    return txn;
  };

  const t0 = nowMs();
  const result: CallResult = {
    callId, status: 0, reason: '', provisional: [], setupMs: 0, hangup: 'none', packets: rec.packets,
    pcm: new Int16Array(0), sentPackets: 0, localSipPort: lp, localRtpPort: rec.port, segments: [],
  };

  let answeredAt = 0;
  let ackMsg: SipMessage | undefined;
  let sender: RtpSender | undefined;
  let resolveEnd!: (how: CallResult['hangup']) => void;
  const ended = new Promise<CallResult['hangup']>((r) => (resolveEnd = r));
  let endTimer: NodeJS.Timeout | undefined;
  let resolveFinal!: () => void;
  const finalSeen = new Promise<void>((r) => (resolveFinal = r));
  let scriptDone: Promise<void> | undefined;
  let resolveServerBye!: () => void;
  const serverByeP = new Promise<void>((r) => (resolveServerBye = r));

  const baseHeaders = (branch: string, cseq: string): Header[] => [
    { name: 'Via', value: via(branch) },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: fromHdr },
    { name: 'To', value: toHdr },
    { name: 'Call-ID', value: callId },
    { name: 'CSeq', value: cseq },
  ];

  sip.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
    let msg: SipMessage;
    try {
      msg = parseSipMessage(buf);
    } catch {
      return;
    }
    if (!msg.isRequest) {
      const viaVal = msg.get('Via') ?? '';
      const branch = /;\s*branch=([^;,\s]+)/i.exec(viaVal)?.[1] ?? '';
      const txn = txns.get(`${branch}|${msg.cseq.method}`);
      if (txn) txn.onResponse(msg);
      else if (msg.cseq.method === 'INVITE' && (msg.status ?? 0) < 300 && (msg.status ?? 0) >= 200 && ackMsg) send(ackMsg); // 2xx retransmission
      return;
    }
    // Requests from the server.
    if (msg.method === 'ACK') return;
    const res = makeResponse(msg, 200);
    if (msg.method === 'BYE') {
      sip.send(res.toBuffer(), rinfo.port, rinfo.address);
      if (!result.serverBye) {
        result.serverBye = msg;
        result.byeAfterAnswerMs = answeredAt ? nowMs() - answeredAt : undefined;
        emit('bye-received');
        resolveServerBye();
        resolveEnd('server');
      }
      return;
    }
    if (msg.method !== 'OPTIONS' && msg.method !== 'INFO' && msg.method !== 'NOTIFY') {
      res.status = 501;
      res.reason = 'Not Implemented';
    }
    sip.send(res.toBuffer(), rinfo.port, rinfo.address);
  });

  // INVITE
  const inviteBranch = newBranch();
  const sdp = buildSdp(la, rec.port, codecs);
  const invite = SipMessage.request('INVITE', requestUri, [
    ...baseHeaders(inviteBranch, '1 INVITE'),
    { name: 'Contact', value: `<sip:caller@${la}:${lp}>` },
    { name: 'User-Agent', value: 'voice-agent-test-caller' },
    { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS' },
    ...(opts.headers ?? []),
    { name: 'Content-Type', value: 'application/sdp' },
  ], sdp);
  let cancelTimer: NodeJS.Timeout | undefined;
  emit('invite', { callId });
  const inviteTxn = request(invite, inviteBranch, true, (res) => {
    const status = res.status ?? 0;
    if (status < 200) {
      result.provisional.push(status);
      emit(String(status));
      if (opts.cancelAfterMs !== undefined && !cancelTimer && !result.status) {
        cancelTimer = setTimeout(() => {
          if (result.status) return;
          const cancel = SipMessage.request('CANCEL', requestUri, baseHeaders(inviteBranch, '1 CANCEL'));
          emit('cancel');
          request(cancel, inviteBranch, false, (r) => {
            if ((r.status ?? 0) >= 200) result.cancelStatus = r.status;
          });
        }, opts.cancelAfterMs);
      }
      return;
    }
    if (result.status) {
      if (status < 300 && ackMsg) send(ackMsg);
      return;
    }
    result.status = status;
    result.reason = res.reason ?? '';
    result.finalResponse = res;
    result.setupMs = nowMs() - t0;
    inviteTxn.stop();
    emit(String(status));
    if (status >= 300) {
      // ACK for a non-2xx final: same branch, To from the response (RFC 3261 §17.1.1.3).
      toHdr = res.get('To') ?? toHdr;
      send(SipMessage.request('ACK', requestUri, [
        { name: 'Via', value: via(inviteBranch) },
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: fromHdr },
        { name: 'To', value: toHdr },
        { name: 'Call-ID', value: callId },
        { name: 'CSeq', value: '1 ACK' },
      ]));
      resolveFinal();
      resolveEnd('none');
      return;
    }
    // 2xx: dialog established.
    answeredAt = nowMs();
    toHdr = res.get('To') ?? toHdr;
    remoteTarget = uriOf(res.get('Contact')) ?? requestUri;
    dest = hostPort(remoteTarget, dest);
    ackMsg = SipMessage.request('ACK', remoteTarget, [...baseHeaders(newBranch(), '1 ACK')]);
    send(ackMsg);
    emit('ack');
    const answer = res.body.toString('utf8');
    result.answerSdp = answer;
    const a = parseAnswerSdp(answer);
    result.payloadType = a.pts[0];
    if (a.address && a.port) result.remoteMedia = { address: a.address, port: a.port };
    if (result.remoteMedia && opts.send !== 'none') {
      const pt = result.payloadType ?? 0;
      const silence = Buffer.alloc(160, pt === 8 ? 0xd5 : 0xff);
      const frames: Buffer[] = [];
      if (opts.send instanceof Int16Array) {
        for (let i = 0; i < opts.send.length; i += 160) {
          const f = new Int16Array(160);
          f.set(opts.send.subarray(i, Math.min(i + 160, opts.send.length)));
          frames.push(g711Encode(f, pt));
        }
      }
      const dtmfPt = [...parseAnswerSdp(answer).rtpmap].find(([, n]) => n === 'TELEPHONE-EVENT')?.[0];
      sender = new RtpSender(rec.socket, result.remoteMedia.address, result.remoteMedia.port, {
        payloadType: pt, frames, fill: silence, ...(dtmfPt !== undefined ? { dtmfPayloadType: dtmfPt } : {}),
      });
      sender.start();
    }
    const off = rec.onPacket(() => {
      emit('rtp-first');
      off();
    });
    resolveFinal();
    endTimer = opts.hangupAfterMs !== undefined
      ? setTimeout(() => resolveEnd('caller'), opts.hangupAfterMs)
      : setTimeout(() => resolveEnd('timeout'), opts.maxCallMs ?? 30000);
    if (opts.script) {
      const ctl = makeControl(rec, () => sender, result, serverByeP);
      scriptDone = opts.script(ctl).then(
        () => resolveEnd('caller'),
        (err: unknown) => {
          result.scriptError = err instanceof Error ? err : new Error(String(err));
          resolveEnd('caller');
        },
      );
    }
  });

  const setupTimer = setTimeout(() => {
    if (!result.status) {
      inviteTxn.stop();
      resolveFinal();
      resolveEnd('none');
    }
  }, opts.setupTimeoutMs ?? 10000);

  await finalSeen;
  clearTimeout(setupTimer);
  if (cancelTimer) clearTimeout(cancelTimer);
  const how = await ended;
  // the call is over: its deadline must not keep the process alive (up to maxCallMs)
  if (endTimer) clearTimeout(endTimer);
  // a script finishes its last wait (which returns at once after the server's BYE)
  if (scriptDone && how === 'server') await Promise.race([scriptDone, new Promise((r) => setTimeout(r, 5000))]);
  sender?.stop();
  result.sentPackets = sender?.sent ?? 0;
  result.hangup = result.status >= 200 && result.status < 300 ? how : 'none';

  if (result.hangup === 'caller' || result.hangup === 'timeout') {
    const byeBranch = newBranch();
    const bye = SipMessage.request('BYE', remoteTarget, [
      ...baseHeaders(byeBranch, '2 BYE'),
      { name: 'Content-Length', value: '0' },
    ]);
    emit('bye');
    result.byeStatus = await new Promise<number>((resolve) => {
      const t = setTimeout(() => {
        txn.stop();
        resolve(0);
      }, 8000);
      const txn = request(bye, byeBranch, false, (r) => {
        if ((r.status ?? 0) >= 200) {
          clearTimeout(t);
          resolve(r.status ?? 0);
        }
      });
    });
  } else if (result.cancelStatus === undefined && opts.cancelAfterMs !== undefined && result.status === 487) {
    // The CANCEL's 200 may trail the 487 slightly.
    await new Promise((r) => setTimeout(r, 100));
  }
  // Let in-flight RTP drain briefly, then close.
  await new Promise((r) => setTimeout(r, 50));
  for (const t of txns.values()) t.stop();
  rec.close();
  sip.close();
  result.pcm = decodeAudio(rec.packets, result.payloadType);
  return result;
}

/** Concatenate the decoded audio of the packets carrying payload type `pt` (0 or 8). */
export function decodeAudio(packets: RtpRecord[], pt: number | undefined): Int16Array {
  const audio = packets.filter((p) => p.pt === pt && (pt === 0 || pt === 8));
  const out = new Int16Array(audio.reduce((n, p) => n + p.payload.length, 0));
  let off = 0;
  for (const p of audio) {
    const dec = g711Decode(p.payload, pt!);
    out.set(dec, off);
    off += dec.length;
  }
  return out;
}

function makeControl(rec: RtpRecorder, sender: () => RtpSender | undefined, result: CallResult, serverBye: Promise<void>): CallControl {
  let hungUp = false;
  void serverBye.then(() => { hungUp = true; });
  /** received audio packets after this index have not been consumed by a waitForAgent yet */
  let cursor = rec.packets.length;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  return {
    get serverHungUp() { return hungUp; },
    serverBye,
    async say(pcm) {
      const s = sender();
      if (!s || hungUp) return;
      await Promise.race([s.enqueue(pcm), serverBye]);
    },
    async dtmf(digits) {
      const s = sender();
      if (!s || hungUp) return;
      await Promise.race([s.sendDtmf(digits), serverBye]);
    },
    pause: (ms) => Promise.race([sleep(ms), serverBye]),
    async waitForAgent(o = {}) {
      const silenceMs = o.silenceMs ?? 1500;
      const deadline = nowMs() + (o.timeoutMs ?? 20000);
      const pt = result.payloadType ?? 0;
      let first = -1;
      let last = -1;
      let i = cursor;
      for (;;) {
        for (; i < rec.packets.length; i++) {
          const p = rec.packets[i]!;
          if (p.pt !== pt) continue;
          if (rmsLevel(g711Decode(p.payload, pt)) > AGENT_VOICED_RMS) {
            if (first < 0) first = i;
            last = i;
          }
        }
        const now = nowMs();
        if (last >= 0 && now - rec.packets[last]!.arrivalMs >= silenceMs) break;
        if (hungUp && now - (rec.packets[rec.packets.length - 1]?.arrivalMs ?? 0) > 100) break;
        if (now > deadline) break;
        await sleep(20);
      }
      cursor = rec.packets.length;
      const s = sender();
      const seg: AgentSegment = { pcm: new Int16Array(0), startMs: 0, endMs: 0, timedOut: first < 0 };
      if (first >= 0) {
        seg.pcm = decodeAudio(rec.packets.slice(first, last + 1), pt);
        seg.startMs = rec.packets[first]!.arrivalMs;
        seg.endMs = rec.packets[last]!.arrivalMs;
        if (s && s.lastVoicedAt > 0 && s.lastVoicedAt < seg.startMs) seg.gapMs = seg.startMs - s.lastVoicedAt;
      }
      result.segments.push(seg);
      return seg;
    },
  };
}

export type { Socket };
