// Where the personalised model runs (parameters.js): the edge file when it holds every trainable
// parameter, else the cloud file on onnxruntime-web (an LSTM the edge lowering unrolled per gate).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { personalizedFile, personalizedPlan, readParameters, writeParameters } from '../src/parameters.js';

const at = (offset) => ({ offset, length: 8 });
function manifest(locations) {
  const parameters = locations.map((where, i) => ({ name: `p${i}`, shape: [2], locations: where }));
  return { edge: { file: 'model.edge.onnx' }, cloud: { file: 'model.onnx' }, training: { parameters } };
}
const onnxjs = { candidates: [{ runtime: 'onnxjs', backend: 'wasm', file: 'model.edge.onnx' }], reason: 'fastest verified' };

test('the edge file runs the personalised model when it holds every parameter', () => {
  const m = manifest([{ 'model.edge.onnx': at(0), 'model.onnx': at(8) }]);
  assert.equal(personalizedFile(m.training, m), 'model.edge.onnx');
  assert.deepEqual(personalizedPlan(onnxjs, m), onnxjs);
});

test('an edge file missing one parameter gives way to onnxruntime-web on the cloud file', () => {
  const m = manifest([{ 'model.edge.onnx': at(0), 'model.onnx': at(8) }, { 'model.onnx': at(16) }]);
  assert.equal(personalizedFile(m.training, m), 'model.onnx');
  const plan = personalizedPlan(onnxjs, m);
  assert.deepEqual(plan.candidates, [{ runtime: 'onnxruntime-web', backend: 'wasm', file: 'model.onnx' }]);
  assert.match(plan.reason, /no location in model\.edge\.onnx/);
  const ranked = { candidates: [...onnxjs.candidates, { runtime: 'onnxruntime-web', backend: 'wasm', file: 'model.onnx' }], reason: 'r' };
  assert.deepEqual(personalizedPlan(ranked, m).candidates, [ranked.candidates[1]]); // a verified pair on that file is kept as ranked
});

test('no file holding every parameter is one error naming the files', () => {
  const m = manifest([{ 'model.edge.onnx': at(0) }, { 'model.onnx': at(8) }]);
  assert.throws(() => personalizedFile(m.training, m), /no file holding every trainable parameter \(looked in model\.edge\.onnx, model\.onnx\)/);
});

test('values written at a location read back', () => {
  const m = manifest([{ 'model.onnx': at(4) }]);
  const bytes = writeParameters(new ArrayBuffer(16), m.training, 'model.onnx', { p0: [1.5, -2] });
  assert.deepEqual(Array.from(readParameters(bytes, m.training, 'model.onnx').p0), [1.5, -2]);
});
