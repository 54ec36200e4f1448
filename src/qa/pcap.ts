/**
 * RTP in pcap files, as SIPp's `play_pcap_audio` replays them (Ethernet / IPv4 / UDP / RTP;
 * SIPp rewrites addresses and ports and paces by the pcap timestamps), and caller scripts made
 * into such files: silence, speech (flite, µ-law, 20 ms packets) and RFC 4733 digits in one
 * continuous RTP stream, the way a phone sends it.
 */
import { writeFileSync } from 'node:fs';
import { rtpPacket } from '../cli/rtp.ts';
import { ulawEncode } from '../media/audio.ts';

/** One RTP packet to write. */
export interface PcapRtp {
  payload: Uint8Array;
  pt: number;
  seq: number;
  ts: number;
  marker?: boolean;
  /** send time from the start of the file, ms */
  atMs: number;
}

export interface RtpPcapOptions {
  /** RTP payload type. @defaultValue 0 (PCMU) */
  payloadType?: number;
  /** Packet interval in ms (also the timestamp step / 8). @defaultValue 20 */
  ptimeMs?: number;
  /** RTP SSRC. @defaultValue 0x5eed1234 */
  ssrc?: number;
  /** First sequence number. @defaultValue 1000 */
  firstSeq?: number;
  /** Source / destination UDP ports written in the file (SIPp replaces them). @defaultValue 27000 / 25000 */
  srcPort?: number;
  dstPort?: number;
}

function ipChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Serialise RTP packets (each with its own payload type, sequence, timestamp and send time) as a pcap file. */
export function rtpPcapPackets(packets: readonly PcapRtp[], opts: Pick<RtpPcapOptions, 'ssrc' | 'srcPort' | 'dstPort'> = {}): Buffer {
  const ssrc = opts.ssrc ?? 0x5eed1234;
  const srcPort = opts.srcPort ?? 27000;
  const dstPort = opts.dstPort ?? 25000;
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  parts.push(gh);
  for (const p of packets) {
    const rtp = rtpPacket(p.seq, p.ts, ssrc, p.pt, p.marker ?? false, p.payload);
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(srcPort, 0);
    udp.writeUInt16BE(dstPort, 2);
    udp.writeUInt16BE(8 + rtp.length, 4);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 8 + rtp.length, 2);
    ip[8] = 64;
    ip[9] = 17;
    Buffer.from([127, 0, 0, 1]).copy(ip, 12);
    Buffer.from([127, 0, 0, 1]).copy(ip, 16);
    ip.writeUInt16BE(ipChecksum(ip), 10);
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const frame = Buffer.concat([eth, ip, udp, rtp]);
    const ph = Buffer.alloc(16);
    const tUs = Math.round(p.atMs * 1000);
    ph.writeUInt32LE(Math.floor(tUs / 1e6), 0);
    ph.writeUInt32LE(tUs % 1e6, 4);
    ph.writeUInt32LE(frame.length, 8);
    ph.writeUInt32LE(frame.length, 12);
    parts.push(ph, frame);
  }
  return Buffer.concat(parts);
}

/** Serialise a list of equal-interval payloads (e.g. 160 µ-law bytes each) of one payload type as a pcap file. */
export function rtpPcap(payloads: Uint8Array[], opts: RtpPcapOptions = {}): Buffer {
  const pt = opts.payloadType ?? 0;
  const ptime = opts.ptimeMs ?? 20;
  let seq = opts.firstSeq ?? 1000;
  let ts = 0;
  const packets = payloads.map((payload, i) => {
    const p: PcapRtp = { payload, pt, seq: seq++ & 0xffff, ts, marker: i === 0, atMs: i * ptime };
    ts += payload.length;
    return p;
  });
  return rtpPcapPackets(packets, opts);
}

/** Write {@link rtpPcap} output to `path`. */
export function writeRtpPcap(path: string, payloads: Uint8Array[], opts: RtpPcapOptions = {}): void {
  writeFileSync(path, rtpPcap(payloads, opts));
}

/** One step of a caller script. */
export type CallerStep = { silenceMs: number } | { pcm: Int16Array } | { dtmf: string };

const DTMF_EVENTS = '0123456789*#ABCD';
/** Tone length per digit and the gap after it, ms (RFC 4733 events at 20 ms). */
const DIGIT_MS = 160;
const DIGIT_GAP_MS = 100;

/**
 * A caller's whole RTP stream from a script: µ-law audio (PCMU, `pt` 0) every 20 ms, silence
 * where nothing is said, RFC 4733 events (payload type `dtmfPt`) in place of audio while a
 * digit is held: 160 ms per digit, the end packet sent three times, 100 ms between digits.
 */
export function callerStream(steps: readonly CallerStep[], dtmfPt = 101): PcapRtp[] {
  const out: PcapRtp[] = [];
  let seq = 1000;
  let ts = 0;
  let atMs = 0;
  let first = true;
  const silence = new Uint8Array(160).fill(0xff);
  const audio = (payload: Uint8Array): void => {
    out.push({ payload, pt: 0, seq: seq++ & 0xffff, ts, marker: first, atMs });
    first = false;
    ts += 160;
    atMs += 20;
  };
  for (const s of steps) {
    if ('silenceMs' in s) {
      for (let i = 0; i < Math.round(s.silenceMs / 20); i++) audio(silence);
    } else if ('pcm' in s) {
      const u = ulawEncode(s.pcm);
      for (let i = 0; i < u.length; i += 160) {
        const f = new Uint8Array(160).fill(0xff);
        f.set(u.subarray(i, Math.min(u.length, i + 160)));
        audio(f);
      }
    } else {
      for (const d of s.dtmf.toUpperCase()) {
        const ev = DTMF_EVENTS.indexOf(d);
        if (ev < 0) throw new Error(`callerStream: "${d}" is not a DTMF digit`);
        const start = ts;
        const n = DIGIT_MS / 20;
        for (let i = 1; i <= n + 2; i++) {
          const end = i >= n;
          const dur = Math.min(i, n) * 160;
          const payload = new Uint8Array([ev, (end ? 0x80 : 0) | 10, dur >> 8, dur & 0xff]);
          out.push({ payload, pt: dtmfPt, seq: seq++ & 0xffff, ts: start, marker: i === 1, atMs });
          // packets 20 ms apart; the two extra end packets follow the first one together
          if (i <= n) { atMs += 20; ts += 160; }
        }
        for (let i = 0; i < DIGIT_GAP_MS / 20; i++) audio(silence);
      }
    }
  }
  return out;
}
