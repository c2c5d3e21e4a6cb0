// Which runtime trains (policy.js fastestVerified, used by personalizer.js chooseTrainRuntime): the
// fastest pair the step graph's browser verification passed; null before any timed verification.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULT_POLICY, fastestVerified } from '../src/policy.js';

const row = (runtime, backend, medianMs, passed = true, extra = {}) => ({ runtime, backend, median_ms: medianMs, passed, ...extra });
const edge = (results, file = 'train.edge.onnx') => ({ file, runtime: 'onnxjs', verified: { file, results } });

test('the fastest passing pair trains, ONNX.js keeping its other passing backends in speed order', () => {
  const results = [row('onnxjs', 'cpu', 204), row('onnxjs', 'wasm', 90), row('onnxruntime-web', 'wasm', 23)];
  assert.deepEqual(fastestVerified(edge(results), DEFAULT_POLICY), { runtime: 'onnxruntime-web', backends: ['wasm'] });
  const slowOrt = [row('onnxjs', 'cpu', 20), row('onnxjs', 'wasm', 9), row('onnxruntime-web', 'wasm', 23)];
  assert.deepEqual(fastestVerified(edge(slowOrt), DEFAULT_POLICY), { runtime: 'onnxjs', backends: ['wasm', 'cpu'] });
});

test('failed rows, rows about another file and backends the page disallows never train', () => {
  const results = [row('onnxruntime-web', 'wasm', 1, false), row('onnxruntime-web', 'wasm', 2, true, { file: 'train.onnx' }),
                   row('onnxjs', 'cpu', 50), row('onnxjs', 'wasm', 40)];
  assert.deepEqual(fastestVerified(edge(results), DEFAULT_POLICY), { runtime: 'onnxjs', backends: ['wasm', 'cpu'] });
  assert.deepEqual(fastestVerified(edge(results), { ...DEFAULT_POLICY, onnxjsBackends: ['cpu'] }), { runtime: 'onnxjs', backends: ['cpu'] });
});

test('no timed verification, or one of another file: null (the static choice decides)', () => {
  assert.equal(fastestVerified({ file: 'train.onnx', runtime: 'onnxruntime-web', verified: {} }, DEFAULT_POLICY), null);
  assert.equal(fastestVerified(edge([row('onnxjs', 'wasm', null)]), DEFAULT_POLICY), null);
  const stale = { file: 'train.edge.onnx', verified: { file: 'old.onnx', results: [row('onnxjs', 'wasm', 5)] } };
  assert.equal(fastestVerified(stale, DEFAULT_POLICY), null);
});
