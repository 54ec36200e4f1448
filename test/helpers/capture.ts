/**
 * Loopback packet capture with Wireshark's `dumpcap` (Debian `wireshark-common`/`tshark`),
 * for timing measurements that must not include a Node receiver's event-loop jitter:
 * timestamps are taken by the kernel when the packet crosses `lo`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether `dumpcap` can be run. */
export function haveDumpcap(): boolean {
  return spawnSync('dumpcap', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** One captured UDP datagram. */
export interface CapturedUdp {
  /** Capture time in microseconds (epoch). */
  tsUs: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  payload: Buffer;
}

export interface Capture {
  /** Stop capturing and return the parsed UDP packets. */
  stop(): Promise<CapturedUdp[]>;
}

/** Start capturing on `lo` with a BPF filter (e.g. `udp and src portrange 25000-25199`). */
export async function startCapture(filter: string): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), 'va-cap-'));
  const file = join(dir, 'cap.pcap');
  const proc = spawn('dumpcap', ['-i', 'lo', '-P', '-q', '-B', '64', '-f', filter, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  // dumpcap prints "Capturing on ..." once the capture runs.
  const t0 = Date.now();
  while (!/Capturing on/.test(err) && Date.now() - t0 < 5000 && proc.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  if (proc.exitCode !== null) throw new Error(`dumpcap failed: ${err}`);
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 200));
      proc.kill('SIGINT');
      await exited;
      const buf = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
      rmSync(dir, { recursive: true, force: true });
      return parsePcapUdp(buf);
    },
  };
}

/** Parse a classic pcap (µs or ns, Ethernet / Linux cooked / raw IPv4) into UDP datagrams. */
export function parsePcapUdp(buf: Buffer): CapturedUdp[] {
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  let le = true;
  let nano = false;
  if (magic === 0xa1b2c3d4) nano = false;
  else if (magic === 0xa1b23c4d) nano = true;
  else if (buf.readUInt32BE(0) === 0xa1b2c3d4) le = false;
  else if (buf.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = true;
  } else throw new Error('not a pcap file');
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const link = u32(20);
  const out: CapturedUdp[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const data = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    let ip = 0;
    if (link === 1) {
      if (data.readUInt16BE(12) !== 0x0800) continue;
      ip = 14;
    } else if (link === 113) {
      if (data.readUInt16BE(14) !== 0x0800) continue;
      ip = 16;
    } else if (link === 101 || link === 228) ip = 0;
    else continue;
    if (data.length < ip + 28 || data[ip]! >> 4 !== 4 || data[ip + 9] !== 17) continue;
    const ihl = (data[ip]! & 0x0f) * 4;
    const udp = ip + ihl;
    const len = data.readUInt16BE(udp + 4);
    out.push({
      tsUs: sec * 1e6 + (nano ? frac / 1000 : frac),
      src: `${data[ip + 12]}.${data[ip + 13]}.${data[ip + 14]}.${data[ip + 15]}`,
      dst: `${data[ip + 16]}.${data[ip + 17]}.${data[ip + 18]}.${data[ip + 19]}`,
      sport: data.readUInt16BE(udp),
      dport: data.readUInt16BE(udp + 2),
      payload: Buffer.from(data.subarray(udp + 8, udp + Math.max(8, len))),
    });
  }
  return out;
}
