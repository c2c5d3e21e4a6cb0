// Which runtime trains (personalizer.js chooseTrainRuntime): the first of the step graph's ranking
// (`edgecloud verify`: the pairs that passed, fastest first); the static choice before any.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chooseTrainRuntime } from '../src/personalizer.js';
import { DEFAULT_POLICY } from '../src/policy.js';

const FILE = 'train.edge.onnx';
const PARAMETERS = [{ name: 'head.weight', shape: [8, 16], dtype: 'float32' }];
const row = (runtime, backend, medianMs, passed = true, extra = {}) => ({ runtime, backend, median_ms: medianMs, passed, ...extra });
/** model.json as verify leaves it: `results` every row, `ranking` those that passed, fastest first. */
function manifest(results, { verifiedFile = FILE } = {}) {
  const ranking = results.filter((r) => r.passed).sort((a, b) => a.median_ms - b.median_ms);
  const edge = { file: FILE, runtime: 'onnxjs', verified: { file: verifiedFile, results }, ranking };
  return { name: 'm', version: '1', training: { file: 'train.onnx', parameters: PARAMETERS, edge } };
}
const plan = (m, policy = DEFAULT_POLICY) => {
  const { runtime, backends } = chooseTrainRuntime(m, policy);
  return { runtime, backends };
};

test('the fastest passing pair trains, ONNX.js keeping its other passing backends in speed order', () => {
  const results = [row('onnxjs', 'cpu', 204), row('onnxjs', 'wasm', 90), row('onnxruntime-web', 'wasm', 23)];
  assert.deepEqual(plan(manifest(results)), { runtime: 'onnxruntime-web', backends: ['wasm'] });
  const slowOrt = [row('onnxjs', 'cpu', 20), row('onnxjs', 'wasm', 9), row('onnxruntime-web', 'wasm', 23)];
  assert.deepEqual(plan(manifest(slowOrt)), { runtime: 'onnxjs', backends: ['wasm', 'cpu'] });
});

test('failed rows, rows about another file and backends the page disallows never train', () => {
  const results = [row('onnxruntime-web', 'wasm', 1, false), row('onnxruntime-web', 'wasm', 2, true, { file: 'train.onnx' }),
                   row('onnxjs', 'cpu', 50), row('onnxjs', 'wasm', 40)];
  assert.deepEqual(plan(manifest(results)), { runtime: 'onnxjs', backends: ['wasm', 'cpu'] });
  assert.deepEqual(plan(manifest(results), { ...DEFAULT_POLICY, onnxjsBackends: ['cpu'] }), { runtime: 'onnxjs', backends: ['cpu'] });
});

test('no verification, or one of another file: the static choice decides', () => {
  const unverified = { name: 'm', version: '1', training: { file: 'train.onnx', parameters: PARAMETERS, edge: { file: 'train.onnx', runtime: 'onnxruntime-web', verified: {} } } };
  assert.deepEqual(plan(unverified), { runtime: 'onnxruntime-web', backends: ['wasm'] });
  const stale = manifest([row('onnxjs', 'wasm', 5), row('onnxruntime-web', 'wasm', 1)], { verifiedFile: 'old.onnx' });
  assert.equal(chooseTrainRuntime(stale, DEFAULT_POLICY).runtime, 'onnxjs'); // edge.runtime as marked, as before
});
