// personalize()'s arguments → examples the step graph can take, checked against model.json's
// `training` entry (docs/training.md), plus the fixed-size, zero-padded batches the worker feeds.
// Pure functions: every problem is one Error naming it, before anything is trained or stored.

import { describeSpec, toFeeds } from './feeds.js';
import { typedArrayClass } from './tensors.js';

const product = (shape) => shape.reduce((a, b) => a * b, 1);

/** The `training` entry, or an Error saying the model cannot be personalised. */
export function trainingSpec(manifest) {
  const training = manifest.training;
  if (!training || !Array.isArray(training.parameters) || training.parameters.length === 0) {
    throw new Error(
      `${manifest.name} v${manifest.version} cannot be personalised: its model.json has no "training" entry ` +
        '(export it with --trainable)',
    );
  }
  return training;
}

function rowsOf(name, tensor, count) {
  if (tensor.shape[0] !== count) {
    throw new Error(`'${name}' has ${tensor.shape[0]} rows but the inputs have ${count} examples`);
  }
  const values = Float32Array.from(tensor.data, Number);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`'${name}' holds NaN or Inf (row ${Math.floor(bad / (values.length / count))}): training needs finite values`);
  return values;
}

const ID_DTYPES = new Set(['int64', 'int32']);

/** True when the step takes `spec` as integer ids (token ids into an embedding table), not float32 values. */
export function takesIds(spec) {
  return ID_DTYPES.has(spec.dtype);
}

/**
 * Token ids as the step takes them (BigInt64Array for int64): whole numbers only, and inside
 * the vocabulary where model.json's `range` names it (onnxruntime would fail on the Gather).
 */
function idsOf(spec, tensor, count) {
  if (tensor.shape[0] !== count) {
    throw new Error(`'${spec.name}' has ${tensor.shape[0]} rows but the inputs have ${count} examples`);
  }
  const width = tensor.data.length / count;
  const [low, high] = spec.range ?? [null, null];
  const Ids = typedArrayClass(spec.dtype);
  const ids = new Ids(tensor.data.length);
  tensor.data.forEach((value, i) => {
    const whole = typeof value === 'bigint' || Number.isSafeInteger(value);
    if (!whole) {
      throw new Error(`input '${spec.name}' takes ${spec.dtype} ids: row ${Math.floor(i / width)} holds ${value}, not a whole number`);
    }
    if (low !== null && (value < low || value > high)) {
      throw new Error(`input '${spec.name}': id ${value} (row ${Math.floor(i / width)}) is outside the vocabulary [${low}, ${high}]`);
    }
    ids[i] = spec.dtype === 'int64' ? BigInt(value) : Number(value);
  });
  return ids;
}

/** Class indices (one per example) or one-hot rows → one-hot rows of `classes` columns. */
function oneHot(name, value, count, classes) {
  const flat = Array.isArray(value) || ArrayBuffer.isView(value) ? Array.from(value) : null;
  if (!flat || flat.length !== count || flat.some(Array.isArray)) return null;
  const rows = new Float32Array(count * classes);
  flat.forEach((label, i) => {
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new Error(`target '${name}' row ${i}: class ${label} is not an integer in [0, ${classes - 1}]`);
    }
    rows[i * classes + label] = 1;
  });
  return rows;
}

/**
 * {count, data: {stepInput: {rowShape, values}}, targets: {stepInput: {rowShape, values}}}.
 * `inputs` as predict() takes them (one example per row); `targets` keyed by output name, or a
 * bare array when one output is trained.
 */
export function trainingExamples(data, manifest) {
  const training = trainingSpec(manifest);
  if (data === null || typeof data !== 'object' || !('inputs' in data) || !('targets' in data)) {
    throw new Error('personalize() takes {inputs, targets}');
  }
  const feeds = toFeeds(data.inputs, manifest.inputs, { allowNaN: true });
  const count = Object.values(feeds)[0].shape[0];
  if (!count) throw new Error('personalize() needs at least one example (the inputs have 0 rows)');
  const examples = { count, data: {}, targets: {} };
  for (const spec of training.inputs.data) {
    const tensor = feeds[spec.name];
    const rowShape = spec.shape.slice(1);
    if (tensor.shape.slice(1).join() !== rowShape.join()) {
      throw new Error(`input '${spec.name}': training takes rows of [${rowShape}], got [${tensor.shape.slice(1)}]`);
    }
    const dtype = spec.dtype ?? 'float32';
    examples.data[spec.input] = { rowShape, dtype, values: takesIds(spec) ? idsOf(spec, tensor, count) : rowsOf(spec.name, tensor, count) };
  }
  const targetSpecs = training.inputs.targets;
  let byOutput = data.targets;
  const bare = Array.isArray(byOutput) || ArrayBuffer.isView(byOutput) || (byOutput && 'data' in byOutput);
  if (bare) {
    if (targetSpecs.length !== 1) {
      throw new Error(`the model trains ${targetSpecs.length} outputs (${targetSpecs.map((t) => t.output)}): key targets by output name`);
    }
    byOutput = { [targetSpecs[0].output]: byOutput };
  }
  if (byOutput === null || typeof byOutput !== 'object') throw new Error('targets must be an array or an object keyed by output name');
  const known = new Set(targetSpecs.map((t) => t.output));
  const unexpected = Object.keys(byOutput).filter((key) => !known.has(key));
  if (unexpected.length) throw new Error(`unexpected target '${unexpected[0]}'; the model trains ${[...known].join(', ')}`);
  for (const spec of targetSpecs) {
    if (!(spec.output in byOutput)) throw new Error(`missing target '${spec.output}'`);
    const rowShape = spec.shape.slice(1);
    const value = byOutput[spec.output];
    let values = spec.encoding === 'one-hot' && rowShape.length === 1 ? oneHot(spec.output, value, count, rowShape[0]) : null;
    if (!values) {
      const tensorSpec = { name: `target ${spec.output}`, dtype: 'float32', shape: [null, ...rowShape] };
      let tensor;
      try {
        tensor = toFeeds(value, [tensorSpec], { allowNaN: true })[tensorSpec.name];
      } catch (error) {
        throw new Error(error.message.replace(/^input /, '').replace(`expected ${describeSpec(tensorSpec)}`, `expected one row of [${rowShape}] per example`));
      }
      values = rowsOf(`target ${spec.output}`, tensor, count);
    }
    examples.targets[spec.input] = { rowShape, values };
  }
  return examples;
}

/** {epochs, batchSize, learningRate, shuffle, seed} with defaults, or an Error naming the bad one. */
export function trainingOptions(options, training) {
  const known = new Set(['epochs', 'batchSize', 'learningRate', 'shuffle', 'seed', 'onProgress', 'signal']);
  const unknown = Object.keys(options).filter((key) => !known.has(key));
  if (unknown.length) throw new Error(`unknown personalize() option '${unknown[0]}'; use ${[...known].join(', ')}`);
  const {
    epochs = 1,
    batchSize = training.batch_size,
    learningRate = training.optimizer?.learning_rate,
    shuffle = true,
    seed = 0,
  } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`epochs must be a whole number ≥ 1, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > training.batch_size) {
    throw new Error(`batchSize must be a whole number from 1 to ${training.batch_size} (the step graph's fixed batch), got ${batchSize}`);
  }
  if (typeof learningRate !== 'number' || !Number.isFinite(learningRate) || learningRate <= 0) {
    throw new Error(`learningRate must be a finite number > 0, got ${learningRate}`);
  }
  if (typeof shuffle !== 'boolean') throw new Error(`shuffle must be true or false, got ${shuffle}`);
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new Error('onProgress must be a function');
  if (options.signal !== undefined && typeof options.signal?.aborted !== 'boolean') throw new Error('signal must be an AbortSignal');
  return { epochs, batchSize, learningRate, shuffle, seed };
}

function padded({ rowShape, dtype = 'float32', values }, rows, batch) {
  const width = product(rowShape);
  const out = new values.constructor(batch * width);
  rows.forEach((row, i) => out.set(values.subarray(row * width, (row + 1) * width), i * width));
  return { dtype, shape: [batch, ...rowShape], data: out };
}

/** Step-graph feeds for the examples `rows` (≤ batch of them): zero rows of weight 0 pad the rest
 * (id 0 for integer inputs, as the exporter's parity check pads). */
export function batchFeeds(examples, rows, training) {
  const batch = training.batch_size;
  const feeds = {};
  for (const [input, tensor] of Object.entries({ ...examples.data, ...examples.targets })) feeds[input] = padded(tensor, rows, batch);
  const weight = new Float32Array(batch);
  weight.fill(1, 0, rows.length);
  feeds[training.inputs.example_weight] = { dtype: 'float32', shape: [batch], data: weight };
  return feeds;
}
