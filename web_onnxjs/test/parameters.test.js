// Where the page reads the shared model's trainable parameters (parameters.js): the edge file,
// or the cloud file when the edge lowering rewrote a trained tensor and model.json locates the
// parameters in the cloud file only (`--trainable all` over an LSTM, issue 28).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parameterFile, readParameters } from '../src/parameters.js';

const at = (offset) => ({ offset, length: 8 });
function manifest(locations) {
  const parameters = locations.map((where, i) => ({ name: `p${i}`, shape: [2], dtype: 'float32', locations: where }));
  return { cloud: { file: 'model.onnx' }, edge: { file: 'model.edge.onnx' }, training: { parameters } };
}

test('the edge file when it holds every parameter', () => {
  const both = manifest([{ 'model.onnx': at(0), 'model.edge.onnx': at(8) }, { 'model.onnx': at(8), 'model.edge.onnx': at(0) }]);
  assert.equal(parameterFile(both), 'model.edge.onnx');
});

test('the cloud file when the edge file lacks one, and the values are read from there', () => {
  const m = manifest([{ 'model.onnx': at(0), 'model.edge.onnx': at(8) }, { 'model.onnx': at(8) }]);
  assert.equal(parameterFile(m), 'model.onnx');
  const bytes = new Float32Array([1, 2, 3, 4]).buffer;
  const values = readParameters(bytes, m.training, parameterFile(m));
  assert.deepEqual({ p0: [...values.p0], p1: [...values.p1] }, { p0: [1, 2], p1: [3, 4] });
});

test('neither file holding them all keeps the edge file, so the error names it', () => {
  const m = manifest([{ 'model.onnx': at(0) }, { 'model.edge.onnx': at(0) }]);
  assert.equal(parameterFile(m), 'model.edge.onnx');
  assert.throws(() => readParameters(new ArrayBuffer(16), m.training, parameterFile(m)), /no location of parameter 'p0' in model.edge.onnx/);
});
