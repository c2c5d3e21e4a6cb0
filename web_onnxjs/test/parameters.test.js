// Where the page reads the shared parameters (parameters.js parametersFile): the edge file when
// model.json locates every trained tensor there, else the cloud file that does (the lowering
// rewrote one), and the bytes read are that file's.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parametersFile, personalisedPlan, readParameters } from '../src/parameters.js';

const at = (offset) => ({ offset, length: 8 });
const manifest = (locations) => ({
  edge: { file: 'model.edge.onnx' },
  training: { parameters: locations.map((where, i) => ({ name: `p${i}`, shape: [2], dtype: 'float32', locations: where })) },
});

test('the edge file when it locates every parameter', () => {
  const both = { 'model.onnx': at(0), 'model.edge.onnx': at(8) };
  assert.equal(parametersFile(manifest([both, both])), 'model.edge.onnx');
});

test('the cloud file when the lowering rewrote one parameter of the edge file', () => {
  const m = manifest([{ 'model.onnx': at(0), 'model.edge.onnx': at(8) }, { 'model.onnx': at(8) }]);
  assert.equal(parametersFile(m), 'model.onnx');
  const bytes = new Float32Array([1, 2, 3, 4]).buffer;
  const values = readParameters(bytes, m.training, parametersFile(m));
  assert.deepEqual(Array.from(values.p0), [1, 2]);
  assert.deepEqual(Array.from(values.p1), [3, 4]);
});

test('the edge file (and its error) when no file locates them all', () => {
  const m = manifest([{ 'model.onnx': at(0) }, { 'model.edge.onnx': at(0) }]);
  assert.equal(parametersFile(m), 'model.edge.onnx');
  assert.throws(() => readParameters(new ArrayBuffer(16), m.training, 'model.edge.onnx'), /no location of parameter 'p0'/);
});

test('a personalised plan adds onnxruntime-web on the file that locates them all, once', () => {
  const m = manifest([{ 'model.onnx': at(0) }]);
  const plan = { candidates: [{ runtime: 'onnxjs', backend: 'wasm', file: 'model.edge.onnx' }], reason: 'r' };
  const extended = personalisedPlan(plan, m);
  assert.deepEqual(extended.candidates.at(-1), { runtime: 'onnxruntime-web', backend: 'wasm', file: 'model.onnx' });
  assert.equal(extended.candidates.length, 2);
  assert.equal(personalisedPlan(extended, m), extended);
  const located = manifest([{ 'model.onnx': at(0), 'model.edge.onnx': at(8) }]);
  assert.equal(personalisedPlan(plan, located), plan);
});
