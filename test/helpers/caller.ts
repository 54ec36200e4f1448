/**
 * The test caller now lives in the product as the engine of `voice-agent call`
 * (src/cli/caller.ts); re-exported here so the suites keep importing it from the helpers.
 */
export * from '../../src/cli/caller.ts';
