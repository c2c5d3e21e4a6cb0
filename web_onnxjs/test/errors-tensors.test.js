// Stable error codes and the plain tensor helpers every runtime and the cloud client share.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CODES, EdgecloudError, asEdgecloudError } from '../src/errors.js';
import { flatten, maxAbsDiff, nest, toTypedArray } from '../src/tensors.js';

test('an EdgecloudError keeps its code and reads as "code: message"', () => {
  const error = new EdgecloudError(CODES.BAD_INPUT, 'input x is wrong');
  assert.equal(error.reason, 'bad-input: input x is wrong');
  assert.equal(asEdgecloudError(error, CODES.EDGE_ERROR), error);
  assert.equal(asEdgecloudError(new Error('boom'), CODES.EDGE_ERROR).reason, 'edge-error: boom');
  assert.equal(asEdgecloudError('text', CODES.CLOUD_ERROR).message, 'text');
  assert.ok(Object.isFrozen(CODES));
});

test('nest and flatten are inverses', () => {
  const data = [1, 2, 3, 4, 5, 6];
  const nested = nest(data, [2, 3, 1]);
  assert.deepEqual(nested, [[[1], [2], [3]], [[4], [5], [6]]]);
  assert.deepEqual(flatten(nested), { shape: [2, 3, 1], data });
});

test('typed arrays by dtype; int64 as BigInt, bool as bytes; unknown dtypes refused', () => {
  assert.ok(toTypedArray({ dtype: 'float32', data: [1.5] }) instanceof Float32Array);
  assert.deepEqual([...toTypedArray({ dtype: 'int64', data: [3] })], [3n]);
  assert.deepEqual([...toTypedArray({ dtype: 'bool', data: [true, false] })], [1, 0]);
  assert.throws(() => toTypedArray({ dtype: 'complex64', data: [] }), /unsupported dtype complex64/);
});

test('maxAbsDiff is Infinity for a missing output, another size or NaN', () => {
  const a = { y: { data: [1, 2] } };
  assert.equal(maxAbsDiff(a, { y: { data: [1, 2.5] } }), 0.5);
  assert.equal(maxAbsDiff(a, {}), Infinity);
  assert.equal(maxAbsDiff(a, { y: { data: [1] } }), Infinity);
  assert.equal(maxAbsDiff(a, { y: { data: [1, NaN] } }), Infinity);
});
