/**
 * Minimal pcap writer for RTP streams (Ethernet / IPv4 / UDP / RTP), as replayed by SIPp's
 * `play_pcap_audio` — the product's QA kit has it (src/qa/pcap.ts); re-exported for tests.
 */
export { rtpPcap, writeRtpPcap, rtpPcapPackets, callerStream, type RtpPcapOptions, type PcapRtp, type CallerStep } from '../../src/qa/pcap.ts';
// RTP header + payload: shared with the `voice-agent call` CLI.
export { rtpPacket } from '../../src/cli/rtp.ts';
