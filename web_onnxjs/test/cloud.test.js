// The page asks the cloud for the version its edge runs, and falls back to the name when that version is gone.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CloudEndpoint, versionName } from '../src/cloud.js';
import { CODES } from '../src/errors.js';

const FEEDS = { x: { data: new Float32Array([1, 2]), shape: [1, 2] } };
const json = (status, body) => ({ ok: status < 300, status, statusText: '', json: async () => body });

/** A fake cloud: `serves` maps an MMS name to the version it answers with; `crossOrigin` turns a missing model into a network error. */
function fakeCloud(serves, { crossOrigin = false, badInput = false } = {}) {
  const posts = [];
  const fetch = async (url, { method }) => {
    const name = decodeURIComponent(new URL(url).pathname.split('/')[2] ?? '');
    const missing = { code: 404, type: 'ModelNotFoundException', message: `Model not found: ${name}` };
    if (method === 'OPTIONS') return name in serves ? json(200, {}) : json(404, missing);
    posts.push(name);
    if (!(name in serves)) {
      if (crossOrigin) throw new TypeError('Failed to fetch');
      return json(404, missing);
    }
    if (badInput) return json(400, { code: 400, type: 'BadRequest', message: 'input x: wrong shape' });
    return json(200, { outputs: { y: [[serves[name]]] }, model_version: String(serves[name]) });
  };
  return { posts, fetch };
}

async function withFetch(cloud, work) {
  const original = globalThis.fetch;
  globalThis.fetch = cloud.fetch;
  try {
    return await work(new CloudEndpoint('http://cloud.test', 'mlp', { environment: {} }));
  } finally {
    globalThis.fetch = original;
  }
}

test('the MMS name of a version is NAME-vV, as the serving side names it', () => {
  assert.equal(versionName('mlp', 2), 'mlp-v2');
  assert.equal(versionName('ecg_net', '10'), 'ecg_net-v10');
});

test('the name is asked first; only another version’s answer makes the page ask for its own', async () => {
  const cloud = fakeCloud({ mlp: 2, 'mlp-v1': 1, 'mlp-v2': 2 });
  await withFetch(cloud, async (endpoint) => {
    assert.equal((await endpoint.predict(FEEDS, '2')).modelVersion, '2'); // the newest: one request by name
    assert.equal((await endpoint.predict(FEEDS, '1')).modelVersion, '1'); // the name answered 2: asked again as mlp-v1
    assert.equal((await endpoint.predict(FEEDS, '1')).modelVersion, '1'); // then straight to mlp-v1
    assert.equal((await endpoint.predict(FEEDS)).modelVersion, '2'); // no version: the name
  });
  assert.deepEqual(cloud.posts, ['mlp', 'mlp', 'mlp-v1', 'mlp-v1', 'mlp']);
});

for (const crossOrigin of [false, true]) {
  test(`a version the cloud no longer has is answered by the newest, and not asked for again (${crossOrigin ? 'failed preflight' : '404'})`, async () => {
    const cloud = fakeCloud({ mlp: 3, 'mlp-v3': 3 }, { crossOrigin });
    await withFetch(cloud, async (endpoint) => {
      assert.equal((await endpoint.predict(FEEDS, '1')).modelVersion, '3'); // the newest answered
      assert.equal((await endpoint.predict(FEEDS, '1')).modelVersion, '3');
      assert.equal(endpoint.lastHealth.status, 'serving');
      assert.equal((await endpoint.predict(FEEDS, '3')).modelVersion, '3'); // adopted: the name serves it
    });
    assert.deepEqual(cloud.posts, ['mlp', 'mlp-v1', 'mlp', 'mlp']);
  });
}

test('a pinned version retired later falls back to the name', async () => {
  const serves = { mlp: 2, 'mlp-v1': 1, 'mlp-v2': 2 };
  const cloud = fakeCloud(serves);
  await withFetch(cloud, async (endpoint) => {
    assert.equal((await endpoint.predict(FEEDS, '1')).modelVersion, '1');
    delete serves['mlp-v1'];
    assert.equal((await endpoint.predict(FEEDS, '1')).modelVersion, '2');
    assert.equal((await endpoint.predict(FEEDS, '1')).modelVersion, '2');
  });
  assert.deepEqual(cloud.posts, ['mlp', 'mlp-v1', 'mlp-v1', 'mlp', 'mlp']);
});

test('bad input is the input’s fault: no second request', async () => {
  const cloud = fakeCloud({ mlp: 1, 'mlp-v1': 1 }, { badInput: true });
  await withFetch(cloud, async (endpoint) => {
    await assert.rejects(endpoint.predict(FEEDS, '1'), (error) => error.code === CODES.BAD_INPUT);
  });
  assert.deepEqual(cloud.posts, ['mlp']);
});

test('when neither the version nor the name is served, the failure is the model missing', async () => {
  const cloud = fakeCloud({ other: 1 });
  await withFetch(cloud, async (endpoint) => {
    await assert.rejects(endpoint.predict(FEEDS, '1'), (error) => error.code === CODES.CLOUD_MODEL_MISSING);
  });
});
