/**
 * Minimal pcap writer for RTP streams (Ethernet / IPv4 / UDP / RTP), as replayed by SIPp's
 * `play_pcap_audio`. SIPp rewrites addresses and ports and paces by the pcap timestamps.
 */
import { writeFileSync } from 'node:fs';
import { rtpPacket } from '../../src/cli/rtp.ts';

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

// RTP header + payload: shared with the `voice-agent call` CLI.
export { rtpPacket } from '../../src/cli/rtp.ts';

function ipChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Serialise a list of 20 ms payloads (e.g. 160 µ-law bytes each) as a pcap file. */
export function rtpPcap(payloads: Uint8Array[], opts: RtpPcapOptions = {}): Buffer {
  const pt = opts.payloadType ?? 0;
  const ptime = opts.ptimeMs ?? 20;
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
  let seq = opts.firstSeq ?? 1000;
  let ts = 0;
  payloads.forEach((payload, i) => {
    const rtp = rtpPacket(seq++, ts, ssrc, pt, i === 0, payload);
    ts += payload.length;
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
    const tUs = i * ptime * 1000;
    ph.writeUInt32LE(Math.floor(tUs / 1e6), 0);
    ph.writeUInt32LE(tUs % 1e6, 4);
    ph.writeUInt32LE(frame.length, 8);
    ph.writeUInt32LE(frame.length, 12);
    parts.push(ph, frame);
  });
  return Buffer.concat(parts);
}

/** Write {@link rtpPcap} output to `path`. */
export function writeRtpPcap(path: string, payloads: Uint8Array[], opts: RtpPcapOptions = {}): void {
  writeFileSync(path, rtpPcap(payloads, opts));
}
