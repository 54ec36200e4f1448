/**
 * A PCMU sender in its own process (the test tool {@link RtpSender}), so that a test may
 * block its own JS thread (a stalled event loop) while the "phone" keeps talking in real time.
 * Usage: node --import tsx rtp-child-sender.ts <dest port> <file of µ-law bytes> <lead silence ms> <tail silence ms>
 * Prints "start <epoch ms>" when the file's first packet is due, "done" when the stream ends.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { RtpSender } from './rtp.ts';

const [port, file, leadMs, tailMs] = process.argv.slice(2);
const FRAME = 160;
const silence = Buffer.alloc(FRAME, 0xff);
const body = readFileSync(file!);
const lead = Math.round(Number(leadMs) / 20);
const frames: Buffer[] = Array.from({ length: lead }, () => silence);
for (let i = 0; i < body.length; i += FRAME) frames.push(Buffer.concat([body.subarray(i, i + FRAME), silence]).subarray(0, FRAME));
for (let i = 0; i < Math.round(Number(tailMs) / 20); i++) frames.push(silence);

const sock = dgram.createSocket('udp4');
const sender = new RtpSender(sock, '127.0.0.1', Number(port), { payloadType: 0, frames });
sender.start();
setTimeout(() => process.stdout.write(`start ${Date.now()}\n`), lead * 20);
setTimeout(() => {
  sender.stop();
  sock.close();
  process.stdout.write('done\n');
}, frames.length * 20 + 50);
