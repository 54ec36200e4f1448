/**
 * Built-in SIP edge: SIP over UDP/TCP, served to drachtio-srf applications over the
 * drachtio wire protocol (see docs/ARCHITECTURE.md, "src/sip-edge").
 */
export { SipEdge, DEFAULT_SIP_EDGE_OPTIONS, EDGE_VERSION, type SipEdgeOptions } from './server.ts';
export { SUPPORTED_OPTION_TAGS } from './ua.ts';
