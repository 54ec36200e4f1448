/**
 * Regenerates the media files the SIPp scenarios replay (sip-config/sipp/media/):
 *   caller-pcmu.pcap  a caller saying a reorder request (flite, µ-law, 20 ms packets, ~3 s)
 * Run: node --import tsx test/helpers/make-sipp-media.ts
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fliteSay, frames } from './audio.ts';
import { ulawEncode } from './g711.ts';
import { writeRtpPcap } from './pcap.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, 'sip-config', 'sipp', 'media');
mkdirSync(dir, { recursive: true });
const speech = fliteSay('Hi, I would like to reorder part number A B one two three four.', 'kal');
const pcm = new Int16Array(8000 * 3);
pcm.set(speech.subarray(0, Math.min(speech.length, pcm.length - 1600)), 1600); // 200 ms of silence first
const payloads = frames(pcm).map((f) => ulawEncode(f));
writeRtpPcap(join(dir, 'caller-pcmu.pcap'), payloads, { payloadType: 0 });
console.log(`wrote ${payloads.length} packets to ${join(dir, 'caller-pcmu.pcap')}`);
