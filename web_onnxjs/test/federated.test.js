// shareUpdate(): what leaves the page, with and without the client token the operator issued.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { shareUpdate } from '../src/federated.js';

const personalization = { baseVersion: 3, samples: 5, parameters: { w: { shape: [2], data: [1.5, 2] } } };
const base = { w: { shape: [2], data: [1, 1] } };

function memoryStorage() {
  const values = new Map();
  return { getItem: (key) => values.get(key) ?? null, setItem: (key, value) => values.set(key, value) };
}

async function sent(options) {
  const calls = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    calls.push({ url, body: JSON.parse(init.body) });
    return new Response(JSON.stringify({ accepted: true, round: 1, base_version: '4', staleness: 1, weight: 0.5 }), { status: 200 });
  };
  try {
    const answer = await shareUpdate({ url: 'http://agg/federated/', model: 'ecg', personalization, base, ...options });
    return { answer, calls };
  } finally {
    globalThis.fetch = realFetch;
  }
}

test('with a token the update carries it and the client id it was issued to', async () => {
  const token = 'u-0123456789abcdef.1800000000.c2lnbmF0dXJl';
  const { answer, calls } = await sent({ token, storage: memoryStorage() });
  assert.deepEqual([answer.accepted, answer.baseVersion, answer.staleness, answer.weight], [true, '4', 1, 0.5]);
  assert.equal(calls[0].url, 'http://agg/federated/ecg/updates');
  assert.equal(calls[0].body.token, token);
  assert.equal(calls[0].body.client, 'u-0123456789abcdef');
  assert.deepEqual(calls[0].body.delta, { w: { shape: [2], data: [0.5, 1] } });
});

test('without a token no token field is sent and the client id is the random one kept', async () => {
  const storage = memoryStorage();
  const { calls } = await sent({ storage });
  assert.equal('token' in calls[0].body, false);
  assert.match(calls[0].body.client, /^c-[0-9a-f-]{36}$/);
  assert.equal(calls[0].body.client, storage.getItem('edgecloud.federated.client'));
});

test('a malformed token is bad input before anything is sent', async () => {
  await assert.rejects(sent({ token: 'not-a-token', storage: memoryStorage() }), { code: 'bad-input' });
});
