/**
 * Itemized call cost: carrier minutes, STT seconds, LLM prompt/completion tokens and TTS
 * characters, each priced from the tenant's price table (config `cdr.prices`).
 *
 * Offline providers (pocketsphinx, flite, the rules agent) cost 0 unless the table says
 * otherwise; their quantities are still counted. A paid provider or model the table does not
 * price gets no amount: it is listed in `unpriced` and left out of the total, so a missing
 * price never reads as "free".
 */

/** Prices of one tenant (the `default` table merged with the tenant's own entries). */
export interface PriceTable {
  /** ISO 4217 code the amounts are in. @defaultValue 'USD' */
  currency: string;
  /**
   * The trunk: price per minute and the billing increment (a call is billed in whole
   * increments, rounded up). @defaultValue unpriced, incrementSeconds 60
   */
  carrier: { perMinute?: number; incrementSeconds: number };
  /** STT per provider (`pocketsphinx`, `openai`, …): price per minute of audio recognised. */
  stt: Record<string, { perMinute: number }>;
  /** LLM per model (`gpt-4o-mini`, …): prices per million prompt / completion tokens. */
  llm: Record<string, { promptPerMillion: number; completionPerMillion: number }>;
  /** TTS per provider (`flite`, `openai`, …): price per million characters synthesised. */
  tts: Record<string, { perMillionChars: number }>;
}

/** A tenant's overrides (any subset). */
export interface PriceTableOverride {
  currency?: string;
  carrier?: { perMinute?: number; incrementSeconds?: number };
  stt?: Record<string, { perMinute: number }>;
  llm?: Record<string, { promptPerMillion: number; completionPerMillion: number }>;
  tts?: Record<string, { perMillionChars: number }>;
}

/** Config `cdr.prices`: `default` applies to every tenant; a tenant id key overrides single prices. */
export type PriceConfig = Record<string, PriceTableOverride>;

/** What the built-in table prices: the offline providers, at 0. */
export function builtinPrices(): PriceTable {
  return {
    currency: 'USD',
    carrier: { incrementSeconds: 60 },
    stt: { pocketsphinx: { perMinute: 0 } },
    llm: { rules: { promptPerMillion: 0, completionPerMillion: 0 } },
    tts: { flite: { perMillionChars: 0 } },
  };
}

/** The price table of `tenantId`: built-in ← `default` ← the tenant's entry. */
export function pricesFor(config: PriceConfig | undefined, tenantId: string): PriceTable {
  const t = builtinPrices();
  for (const o of [config?.default, config?.[tenantId]]) {
    if (!o) continue;
    if (o.currency) t.currency = o.currency;
    if (o.carrier) t.carrier = { ...t.carrier, ...o.carrier };
    if (o.stt) t.stt = { ...t.stt, ...o.stt };
    if (o.llm) t.llm = { ...t.llm, ...o.llm };
    if (o.tts) t.tts = { ...t.tts, ...o.tts };
  }
  return t;
}

/** The quantities of one call. */
export interface CallUsage {
  /** answer → end, seconds (what the trunk bills) */
  carrierSeconds: number;
  sttProvider: string;
  /** audio handed to the recogniser, seconds */
  sttSeconds: number;
  /** model name, or 'rules' when no LLM answered */
  llmModel: string;
  llmPromptTokens: number;
  llmCompletionTokens: number;
  ttsProvider: string;
  /** characters handed to the synthesiser */
  ttsChars: number;
}

export interface CostItem {
  item: 'carrier' | 'stt' | 'llm_prompt' | 'llm_completion' | 'tts';
  /** provider or model ('trunk' for the carrier) */
  provider: string;
  quantity: number;
  unit: 'min' | 's' | 'tokens' | 'chars';
  /** price per `per` units; null when the table has none */
  unitPrice: number | null;
  per: number;
  /** quantity × unitPrice / per, rounded to 6 decimals; null when unpriced (0 when the quantity is 0) */
  amount: number | null;
}

export interface CallCost {
  currency: string;
  items: CostItem[];
  /** sum of the priced items, 6 decimals */
  total: number;
  /** `<item>:<provider>` of items without a price (not in the total) */
  unpriced: string[];
}

const round6 = (n: number): number => Math.round(n * 1e6) / 1e6;

/** Carrier minutes billed for `seconds`, in whole increments rounded up. */
export function billedMinutes(seconds: number, incrementSeconds: number): number {
  if (!(seconds > 0)) return 0;
  const inc = incrementSeconds > 0 ? incrementSeconds : 1;
  return round6((Math.ceil(seconds / inc - 1e-9) * inc) / 60);
}

/** Price one call's usage with a tenant's table. */
export function priceCall(u: CallUsage, table: PriceTable): CallCost {
  const items: CostItem[] = [];
  const add = (item: CostItem['item'], provider: string, quantity: number, unit: CostItem['unit'], unitPrice: number | undefined, per: number): void => {
    const p = unitPrice ?? null;
    // nothing used costs nothing, priced or not
    const amount = quantity === 0 ? 0 : p === null ? null : round6((quantity * p) / per);
    items.push({ item, provider, quantity, unit, unitPrice: p, per, amount });
  };
  add('carrier', 'trunk', billedMinutes(u.carrierSeconds, table.carrier.incrementSeconds), 'min', table.carrier.perMinute, 1);
  add('stt', u.sttProvider, round6(u.sttSeconds), 's', table.stt[u.sttProvider]?.perMinute, 60);
  const llm = table.llm[u.llmModel];
  add('llm_prompt', u.llmModel, u.llmPromptTokens, 'tokens', llm?.promptPerMillion, 1e6);
  add('llm_completion', u.llmModel, u.llmCompletionTokens, 'tokens', llm?.completionPerMillion, 1e6);
  add('tts', u.ttsProvider, u.ttsChars, 'chars', table.tts[u.ttsProvider]?.perMillionChars, 1e6);
  const unpriced = items.filter((i) => i.amount === null).map((i) => `${i.item}:${i.provider}`);
  const total = round6(items.reduce((s, i) => s + (i.amount ?? 0), 0));
  return { currency: table.currency, items, total, unpriced };
}
