/**
 * The conversation in a live call: STT → agent → TTS with turn-taking and barge-in.
 *
 * ```ts
 * const tools = await gatewayForTenant(tenant);                // one per tenant (cached)
 * const ctx = { tenant, callId, ani, dnis, tools, now: agentNow() };
 * const dialogue = new DialogueController({
 *   media: session, agent: createAgent(ctx), ctx, stt, tts, voice: tenant.voice, vocabulary,
 *   enqueueCase: (m) => cases.enqueueCase(m), onHangup: () => call.hangup(), onTransfer: …,
 * });
 * await dialogue.start();                                       // identify + greet, then listen
 * call.once('ended', () => dialogue.stop());
 * ```
 */
export { DialogueController, type DialogueOptions, type DialogueMedia, type DialogueState, type TurnTiming } from './controller.ts';
export type { DialogueEntry } from '../agent/types.ts';
export type { TransferRequest, TransferOutcome } from '../escalation/handoff.ts';
export {
  createEndpointer, EnergyEndpointer, VadEndpointer, ENERGY_DEFAULTS,
  type Endpointer, type EndpointerEvents, type EndpointMedia, type EnergyTunables, type VadEndpointerOptions,
} from './endpoint.ts';

export { agentNow } from './clock.ts';
export { DialogueService, type DialogueServiceOptions, type DialogueCall } from './service.ts';
