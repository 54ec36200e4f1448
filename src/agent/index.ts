/**
 * Agents: one caller turn in → a stream of actions out.
 *
 * How the dialogue controller drives an agent (STT → agent → TTS in a Call):
 * ```ts
 * const tools = await createToolGateway(tenantToolPolicy(tenant));
 * const agent = createAgent({ tenant, callId, ani, dnis, tools });
 * await perform(agent.start(ctx));                       // identify + greeting (or after-hours notice)
 * on final transcript: ac = new AbortController(); await perform(agent.turn({ text }, ac.signal));
 * on barge-in while speaking: ac.abort() (stops the LLM stream; tools already running finish)
 * perform(actions): for await (const a of actions) switch (a.type) {
 *   'say' | 'filler' → TTS the text now (queue behind what is playing; `final` = end of the reply)
 *   'tool'           → transcript / screen pop / logs only
 *   'take_message'   → enqueueCase(a.message) (src/jobs) — durable, retried, idempotent
 *   'transfer'       → after queued speech has played, hand off (src/escalation)
 *   'hangup'         → after queued speech has played, BYE
 * }
 * ```
 * `agent.state` (caller, account, slots, order context, transcript, reason) is the screen pop.
 */
export * from './types.ts';
export { RulesAgent, type RulesAgentOptions } from './rules.ts';
export { fillTemplate } from './text.ts';
export { LlmAgent, type LlmAgentOptions } from './llm.ts';
export { SentenceSplitter } from './sentences.ts';
export * as text from './text.ts';
export { createAgent, llmSettings, tenantToolPolicy, DEFAULT_LLM_MODEL, DEFAULT_OPENAI_BASE_URL } from './factory.ts';
