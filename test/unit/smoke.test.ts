import t from 'tap';
t.test('toolchain runs TypeScript tests', async (t) => { t.equal(1 + 1, 2); });
