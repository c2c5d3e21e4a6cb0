// What a caller passes to predict() → plain tensors checked against model.json's signature, so
// bad input gets one clear message before it reaches either side (and never counts as a fallback).

import { flatten } from './tensors.js';

const NUMERIC = new Set(['float32', 'float64', 'int32', 'int64', 'int8', 'uint8', 'bool']);
const INTEGER = new Set(['int32', 'int64', 'int8', 'uint8']);

/** "float32[?, 64]": a signature entry as people read it (same wording as the MMS handler). */
export function describeSpec(spec) {
  return `${spec.dtype}[${spec.shape.map((d) => (d === null ? '?' : d)).join(', ')}]`;
}

function isPlainTensor(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value) && 'data' in value;
}

/** Flat values plus the model's shape: fill the one free dimension from the length. */
function inferShape(spec, length) {
  const known = spec.shape.reduce((product, dim) => product * (dim ?? 1), 1);
  const free = spec.shape.filter((dim) => dim === null).length;
  if (free > 1) throw new Error(`input '${spec.name}' has ${free} free dimensions: pass {data, shape} or nested arrays`);
  if (free === 0 || length % known !== 0) return [length];
  return spec.shape.map((dim) => dim ?? length / known);
}

/** "[0, 3]": where flat index `flat` lies in `shape` (the same wording as the MMS handler). */
function position(shape, flat) {
  const index = [];
  for (let axis = shape.length - 1; axis >= 0; axis -= 1) {
    index.unshift(flat % shape[axis]);
    flat = Math.floor(flat / shape[axis]);
  }
  return `[${index.join(', ')}]`;
}

function toTensor(spec, value, allowNaN) {
  let shape;
  let data;
  if (isPlainTensor(value)) {
    ({ shape, data } = value);
    data = Array.from(data);
    if (!Array.isArray(shape)) shape = inferShape(spec, data.length);
  } else if (ArrayBuffer.isView(value) || (Array.isArray(value) && !value.some(Array.isArray))) {
    data = Array.from(value);
    shape = inferShape(spec, data.length);
  } else if (Array.isArray(value)) {
    ({ shape, data } = flatten(value));
    if (data.some(Array.isArray) || data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new Error(`input '${spec.name}' is ragged: every row must have the same length`);
    }
  } else {
    throw new Error(`input '${spec.name}' must be an array, a typed array or {data, shape}, got ${typeof value}`);
  }
  const fits = shape.length === spec.shape.length && spec.shape.every((dim, i) => dim === null || dim === shape[i]);
  if (!fits || shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new Error(`input '${spec.name}': expected ${describeSpec(spec)}, got shape [${shape.join(', ')}] with ${data.length} values`);
  }
  if (NUMERIC.has(spec.dtype) && data.some((v) => typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'bigint')) {
    throw new Error(`input '${spec.name}': expected numbers (${spec.dtype}), got ${typeof data.find((v) => typeof v !== 'number')}`);
  }
  // A typed array would cut 1.5 to 1 without a word; the cloud refuses it: so does the page.
  const fractional = INTEGER.has(spec.dtype) ? data.findIndex((v) => typeof v === 'number' && !Number.isInteger(v)) : -1;
  if (fractional >= 0) {
    throw new Error(
      `input '${spec.name}': expected ${describeSpec(spec)}, got fractional numbers (${data[fractional]} at index ${position(shape, fractional)})`,
    );
  }
  // As the values will be stored: 1e308 is a finite double but Infinity in a float32 tensor, which
  // the cloud (numpy's astype) refuses as Inf too.
  const stored = spec.dtype === 'float32' ? Math.fround : (v) => v;
  const nonFinite = allowNaN ? -1 : data.findIndex((v) => typeof v === 'number' && !Number.isFinite(stored(v)));
  if (nonFinite >= 0) {
    throw new Error(
      `input '${spec.name}': expected finite values, got NaN or Inf at index ${position(shape, nonFinite)} ` +
        '(this model\'s model.json does not set "serving": {"allow_nan": true})',
    );
  }
  return { dtype: spec.dtype, shape, data };
}

/**
 * Plain tensors keyed by input name; throws one Error naming the problem. NaN and ±Inf are refused
 * unless `allowNaN` (model.json's serving.allow_nan), as the cloud refuses them: both sides agree.
 */
export function toFeeds(input, specs, { allowNaN = false } = {}) {
  if (input === null || input === undefined) throw new Error('predict() needs an input');
  const byName = typeof input === 'object' && !Array.isArray(input) && !ArrayBuffer.isView(input) && !isPlainTensor(input);
  if (!byName) {
    if (specs.length !== 1) {
      throw new Error(`the model has ${specs.length} inputs (${specs.map((s) => s.name).join(', ')}): pass an object keyed by input name`);
    }
    return { [specs[0].name]: toTensor(specs[0], input, allowNaN) };
  }
  const names = new Set(specs.map((s) => s.name));
  const unexpected = Object.keys(input).filter((key) => !names.has(key));
  if (unexpected.length) throw new Error(`unexpected input '${unexpected[0]}'; the model takes ${[...names].join(', ')}`);
  const feeds = {};
  for (const spec of specs) {
    if (!(spec.name in input)) throw new Error(`missing input '${spec.name}'`);
    feeds[spec.name] = toTensor(spec, input[spec.name], allowNaN);
  }
  return feeds;
}

/**
 * Why the browser file cannot take `feeds`, or null: model.json's `edge.inputs` names the shapes it
 * was pinned to at export (free dimensions the lowering had to fix), which the signature's free
 * dimensions do not show.
 */
export function pinnedShapeProblem(feeds, pinnedSpecs) {
  for (const spec of pinnedSpecs ?? []) {
    const shape = feeds[spec.name]?.shape;
    if (!shape) continue;
    const fits = shape.length === spec.shape.length && spec.shape.every((dim, i) => dim === null || dim === shape[i]);
    if (!fits) {
      return `the browser file takes input '${spec.name}' only as ${describeSpec(spec)} (pinned at export), ` +
        `this one is [${shape.join(', ')}]`;
    }
  }
  return null;
}

/** How many numbers the request carries (the "input size" the auto policy weighs). */
export function elementCount(feeds) {
  return Object.values(feeds).reduce((sum, t) => sum + t.data.length, 0);
}

/** Zeros shaped like the signature (free dimensions = 1): the edge's smoke test at load time. */
export function zeroFeeds(specs) {
  return Object.fromEntries(
    specs.map((spec) => {
      const shape = spec.shape.map((dim) => dim ?? 1);
      return [spec.name, { dtype: spec.dtype, shape, data: new Array(shape.reduce((a, b) => a * b, 1)).fill(0) }];
    }),
  );
}
