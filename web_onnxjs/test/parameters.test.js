// Which inference file the page reads the base parameters from (issue 28: a lowering that unrolls
// a recurrent layer leaves its tensors only in the cloud file).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parameterFile } from '../src/parameters.js';

const at = (offset) => ({ offset, length: 4 });
const training = (locations) => ({ parameters: locations.map((where, i) => ({ name: `p${i}`, shape: [1], locations: where })) });

test('the edge file when it holds every parameter', () => {
  const both = { 'model.edge.onnx': at(8), 'model.onnx': at(16) };
  assert.equal(parameterFile(training([both, both]), 'model.edge.onnx'), 'model.edge.onnx');
});

test('the cloud file when the lowering rewrote a trained tensor in the edge file', () => {
  const spec = training([{ 'model.onnx': at(16) }, { 'model.onnx': at(32), 'model.edge.onnx': at(8) }]);
  assert.equal(parameterFile(spec, 'model.edge.onnx'), 'model.onnx');
});

test('no file holding them all is one error naming the problem', () => {
  const spec = training([{ 'model.onnx': at(16) }, { 'model.edge.onnx': at(8) }]);
  assert.throws(() => parameterFile(spec, 'model.edge.onnx'), /no inference file holding every trainable parameter/);
});
