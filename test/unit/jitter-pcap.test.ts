// sip-tester's g711a.pcap replayed through the playout path with scripted
// jitter (±40 ms) and 5 % random loss: the decoded audio must still correlate
// with the clean decode (bound: r ≥ 0.85 overall). Deterministic (seeded).
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { native } from '../../src/media/native.ts';
import { alawDecode } from '../../src/media/index.ts';
import { requireTool } from '../helpers/require.ts';

const path = '/usr/share/sip-tester/g711a.pcap';
function udpPayloads(p: string): Buffer[] {
  const d = readFileSync(p); const l2 = d.readUInt32LE(20) === 113 ? 16 : 14; const out: Buffer[] = []; let off = 24;
  while (off + 16 <= d.length) {
    const incl = d.readUInt32LE(off + 8); const ip = d.subarray(off + 16 + l2, off + 16 + incl); off += 16 + incl;
    if ((ip[0] >> 4) !== 4 || ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0] & 15) * 4); out.push(Buffer.from(udp.subarray(8, udp.readUInt16BE(4))));
  }
  return out;
}
let seed = 42;
const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };

t.test('g711a.pcap with ±40 ms jitter and 5 % loss stays intact', { skip: requireTool(t, 'g711a.pcap jitter', existsSync(path), path, 'sip-tester') }, async (t) => {
  const pkts = udpPayloads(path).filter((p) => (p[1] & 0x7f) === 8);
  t.ok(pkts.length > 200, `${pkts.length} PCMA packets`);
  const clean = new Int16Array(pkts.reduce((n, p) => n + p.length - 12, 0));
  let o = 0; for (const p of pkts) { clean.set(alawDecode(p.subarray(12)), o); o += p.length - 12; }
  const ptimeMs = (pkts[0].length - 12) / 8;
  const arrivals = pkts.map((p, i) => ({ p, at: 100 + i * ptimeMs + (rand() * 80 - 40), lost: rand() < 0.05 })).filter((x) => !x.lost).sort((a, b) => a.at - b.at);
  const pl = new native.PlayoutTest({ codec: 'PCMA', payloadType: 8 });
  const out: Int16Array[] = [];
  let qi = 0;
  for (let now = 3; now < 100 + clean.length / 8 + 300; now += 20) {
    while (qi < arrivals.length && arrivals[qi].at <= now) { pl.put(arrivals[qi].p, arrivals[qi].at); qi++; }
    const f = pl.tick(now); if (f) out.push(f);
  }
  const got = new Int16Array(out.length * 160); out.forEach((f, i) => got.set(f, i * 160));
  // Align on the first frame (playout starts with the first packet), then correlate.
  let best = { r: -1, lag: 0 };
  for (let lag = 0; lag < 1600; lag++) {
    let xy = 0, xx = 0, yy = 0;
    for (let i = 0; i < clean.length - 3200; i += 3) { const a = clean[i], b = got[i + lag] ?? 0; xy += a * b; xx += a * a; yy += b * b; }
    const r = xy / Math.sqrt(xx * yy + 1e-9); if (r > best.r) best = { r, lag };
  }
  const st = pl.stats();
  t.comment(`pcap through JB: r=${best.r.toFixed(3)} (lag ${best.lag} samples), lost ${st.lost}, concealed ${st.concealed}, late ${st.late}, jitter ${st.jitterMs.toFixed(1)} ms, target ${st.targetDelayMs.toFixed(0)} ms, shrinks ${st.shrinks}, stretches ${st.stretches}`);
  t.ok(best.r >= 0.85, 'correlation with the clean decode ≥ 0.85');
});
