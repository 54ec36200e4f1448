#!/usr/bin/env node
// A PCMU sender in its own process, so that a test may block its own JS thread (to
// reproduce a stalled event loop) while the "phone" keeps talking in real time.
// Usage: node rtp-child-sender.mjs <dest port> <file of µ-law bytes> <lead silence ms> <tail silence ms>
// Prints "start <epoch ms>" when the first payload byte of the file is sent, "done" at the end.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

const [port, file, leadMs, tailMs] = process.argv.slice(2);
const body = readFileSync(file);
const lead = Math.round(Number(leadMs) / 20) * 160;
const tail = Math.round(Number(tailMs) / 20) * 160;
const all = Buffer.concat([Buffer.alloc(lead, 0xff), body, Buffer.alloc(tail, 0xff)]);
const sock = dgram.createSocket('udp4');
const ssrc = (Math.random() * 2 ** 32) >>> 0;
let seq = (Math.random() * 65536) | 0;
let ts = (Math.random() * 2 ** 32) >>> 0;
let pos = 0;
let next = performance.now();
const tick = () => {
  while (next <= performance.now() && pos < all.length) {
    if (pos === lead) process.stdout.write(`start ${Date.now()}\n`);
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h.writeUInt16BE(seq++ & 0xffff, 2);
    h.writeUInt32BE(ts >>> 0, 4);
    h.writeUInt32BE(ssrc, 8);
    ts = (ts + 160) >>> 0;
    const pl = Buffer.alloc(160, 0xff);
    all.copy(pl, 0, pos, Math.min(pos + 160, all.length));
    sock.send(Buffer.concat([h, pl]), Number(port), '127.0.0.1');
    pos += 160;
    next += 20;
  }
  if (pos >= all.length) {
    process.stdout.write('done\n');
    sock.close();
    return;
  }
  setTimeout(tick, Math.max(1, next - performance.now()));
};
tick();
