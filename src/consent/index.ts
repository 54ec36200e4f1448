/**
 * Recording posture, jurisdiction, disclosure and consent.
 *
 * jurisdiction.ts  calling number → country (E.164) / US state (NANP area code) → consent rule
 * posture.ts       tenant posture + overrides + the legal floor → the posture of one call
 * recording.ts     the call's recording (started only by consent or notice), sidecar, retention purge
 * gate.ts          the agent wrapper that says the disclosures and takes the consent answer
 * cli.ts           `voice-agent recordings purge`
 */
export * from './jurisdiction.ts';
export * from './posture.ts';
export * from './recording.ts';
export * from './gate.ts';
