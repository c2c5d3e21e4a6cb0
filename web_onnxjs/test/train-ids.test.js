// A training step on token ids (model.json `training.inputs.data[].dtype` "int64", docs/training.md):
// the examples are built in that dtype (BigInt64Array, the tensor onnxruntime-web takes), padded
// with id 0, checked against the vocabulary `range`; bad ids are one Error each; ONNX.js never trains it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chooseTrainRuntime } from '../src/personalizer.js';
import { DEFAULT_POLICY } from '../src/policy.js';
import { toTypedArray } from '../src/tensors.js';
import { batchFeeds, trainingExamples } from '../src/train-data.js';

const TOKENS = 3;
const training = {
  file: 'train.onnx',
  batch_size: 4,
  parameters: [{ name: 'embedding.weight', shape: [50, 16], dtype: 'float32' }],
  state: [],
  inputs: {
    data: [{ name: 'input', input: 'input', dtype: 'int64', shape: [4, TOKENS], range: [0, 49] }],
    targets: [{ output: 'output', input: 'target.output', dtype: 'float32', shape: [4, 2], encoding: 'one-hot' }],
    example_weight: 'example_weight',
    learning_rate: 'learning_rate',
  },
  // marked for ONNX.js on purpose: the ids alone must keep the trainer off it
  edge: { file: 'train.onnx', runtime: 'onnxjs', backends: ['wasm'], verified: {} },
};
const manifest = { name: 'text', version: '1', inputs: [{ name: 'input', dtype: 'int64', shape: [null, TOKENS] }], training };

test('ids become a BigInt64Array feed of the step dtype, padded with id 0 and weight 0', () => {
  const examples = trainingExamples({ inputs: [[1, 2, 3], [49, 0, 7]], targets: [0, 1] }, manifest);
  assert.ok(examples.data.input.values instanceof BigInt64Array);
  const feeds = batchFeeds(examples, [1, 0], training);
  assert.equal(feeds.input.dtype, 'int64');
  assert.deepEqual(feeds.input.shape, [4, TOKENS]);
  assert.deepEqual(Array.from(feeds.input.data), [49n, 0n, 7n, 1n, 2n, 3n, 0n, 0n, 0n, 0n, 0n, 0n]);
  assert.deepEqual(Array.from(feeds.example_weight.data), [1, 1, 0, 0]);
  assert.equal(feeds['target.output'].dtype, 'float32');
  const typed = toTypedArray(feeds.input); // what ortweb-runtime.js hands onnxruntime-web
  assert.ok(typed instanceof BigInt64Array && typed[0] === 49n);
});

test('BigInt ids are taken as they are', () => {
  const examples = trainingExamples({ inputs: { data: [5n, 6n, 7n], shape: [1, TOKENS] }, targets: [1] }, manifest);
  assert.deepEqual(Array.from(examples.data.input.values), [5n, 6n, 7n]);
});

test('a float where an id is expected, or an id outside the vocabulary, is one Error naming it', () => {
  assert.throws(
    () => trainingExamples({ inputs: [[1, 2.5, 3]], targets: [0] }, manifest),
    { message: "input 'input': expected int64[?, 3], got fractional numbers (2.5 at index [0, 1])" },
  );
  assert.throws(
    () => trainingExamples({ inputs: [[1, 2, 3], [4, 50, 6]], targets: [0, 1] }, manifest),
    { message: "input 'input': id 50 (row 1) is outside the vocabulary [0, 49]" },
  );
  assert.throws(
    () => trainingExamples({ inputs: [[-1, 2, 3]], targets: [0] }, manifest),
    { message: "input 'input': id -1 (row 0) is outside the vocabulary [0, 49]" },
  );
});

test('a step on ids trains on onnxruntime-web, never ONNX.js', () => {
  assert.deepEqual(chooseTrainRuntime(manifest, DEFAULT_POLICY), { runtime: 'onnxruntime-web', backends: ['wasm'], file: 'train.onnx' });
  const floats = { ...manifest, training: { ...training, inputs: { ...training.inputs, data: [{ ...training.inputs.data[0], dtype: 'float32' }] } } };
  assert.equal(chooseTrainRuntime(floats, DEFAULT_POLICY).runtime, 'onnxjs'); // float inputs: as marked, as before
});
