/** Itemized call cost from the per-tenant price tables (src/cdr/pricing.ts). */
import t from 'tap';
import { billedMinutes, priceCall, pricesFor, type CallUsage, type PriceConfig } from '../../src/cdr/index.ts';

const usage: CallUsage = {
  carrierSeconds: 61, sttProvider: 'openai', sttSeconds: 30, llmModel: 'gpt-4o-mini',
  llmPromptTokens: 12_000, llmCompletionTokens: 800, ttsProvider: 'openai', ttsChars: 1500,
};

const config: PriceConfig = {
  default: {
    carrier: { perMinute: 0.01, incrementSeconds: 6 },
    stt: { openai: { perMinute: 0.006 } },
    llm: { 'gpt-4o-mini': { promptPerMillion: 0.15, completionPerMillion: 0.6 } },
    tts: { openai: { perMillionChars: 15 } },
  },
  acme: { currency: 'EUR', carrier: { perMinute: 0.02 } },
};

t.test('billed carrier minutes round up to the increment', async (t) => {
  t.equal(billedMinutes(0, 60), 0);
  t.equal(billedMinutes(1, 60), 1);
  t.equal(billedMinutes(60, 60), 1);
  t.equal(billedMinutes(61, 60), 2);
  t.equal(billedMinutes(61, 6), 1.1);
  t.equal(billedMinutes(60, 6), 1);
  t.equal(billedMinutes(59.2, 1), 1);
});

t.test('every item priced from the default table', async (t) => {
  const c = priceCall(usage, pricesFor(config, 'northwind'));
  t.equal(c.currency, 'USD');
  const by = Object.fromEntries(c.items.map((i) => [i.item, i]));
  t.match(by.carrier, { provider: 'trunk', quantity: 1.1, unit: 'min', unitPrice: 0.01, amount: 0.011 });
  t.match(by.stt, { provider: 'openai', quantity: 30, unit: 's', unitPrice: 0.006, per: 60, amount: 0.003 });
  t.match(by.llm_prompt, { provider: 'gpt-4o-mini', quantity: 12000, unit: 'tokens', amount: 0.0018 });
  t.match(by.llm_completion, { quantity: 800, amount: 0.00048 });
  t.match(by.tts, { provider: 'openai', quantity: 1500, unit: 'chars', amount: 0.0225 });
  t.equal(c.total, 0.03878, 'total = 0.011 + 0.003 + 0.0018 + 0.00048 + 0.0225');
  t.same(c.unpriced, []);
});

t.test("a tenant's entries override single prices, the rest comes from default", async (t) => {
  const p = pricesFor(config, 'acme');
  t.equal(p.currency, 'EUR');
  t.same(p.carrier, { incrementSeconds: 6, perMinute: 0.02 });
  t.same(p.stt.openai, { perMinute: 0.006 });
  const c = priceCall(usage, p);
  t.equal(c.items.find((i) => i.item === 'carrier')!.amount, 0.022);
});

t.test('offline providers cost 0 with their quantities counted; nothing configured leaves the carrier unpriced', async (t) => {
  const c = priceCall({
    carrierSeconds: 95, sttProvider: 'pocketsphinx', sttSeconds: 12.5, llmModel: 'rules',
    llmPromptTokens: 0, llmCompletionTokens: 0, ttsProvider: 'flite', ttsChars: 420,
  }, pricesFor(undefined, 'northwind'));
  const by = Object.fromEntries(c.items.map((i) => [i.item, i]));
  t.match(by.stt, { provider: 'pocketsphinx', quantity: 12.5, amount: 0 });
  t.match(by.tts, { provider: 'flite', quantity: 420, amount: 0 });
  t.match(by.llm_prompt, { provider: 'rules', quantity: 0, amount: 0 });
  t.match(by.carrier, { quantity: 2, unitPrice: null, amount: null }, 'the trunk has no built-in price');
  t.same(c.unpriced, ['carrier:trunk']);
  t.equal(c.total, 0);
});

t.test('an unpriced paid model is listed, not counted as free', async (t) => {
  const c = priceCall({ ...usage, llmModel: 'some-new-model' }, pricesFor(config, 'northwind'));
  t.same(c.unpriced, ['llm_prompt:some-new-model', 'llm_completion:some-new-model']);
  t.equal(c.items.find((i) => i.item === 'llm_prompt')!.amount, null);
  t.equal(c.total, 0.0365, 'carrier + stt + tts only');
});

t.test('nothing used is not "unpriced"', async (t) => {
  const c = priceCall({ ...usage, carrierSeconds: 0, llmModel: 'unknown', llmPromptTokens: 0, llmCompletionTokens: 0 }, pricesFor({}, 'x'));
  t.notOk(c.unpriced.includes('carrier:trunk'));
  t.notOk(c.unpriced.some((u) => u.startsWith('llm')));
  t.same(c.unpriced, ['stt:openai', 'tts:openai']);
});
