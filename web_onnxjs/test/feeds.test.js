// Input checking against model.json's signature: the same wording as the MMS handler's.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { describeSpec, elementCount, toFeeds, zeroFeeds } from '../src/feeds.js';

const window = { name: 'window', dtype: 'float32', shape: [null, 4, 1] };

test('a flat array fills the one free dimension', () => {
  const feeds = toFeeds([1, 2, 3, 4, 5, 6, 7, 8], [window]);
  assert.deepEqual(feeds.window.shape, [2, 4, 1]);
  assert.equal(elementCount(feeds), 8);
});

test('nested arrays, typed arrays and {data, shape} are all accepted', () => {
  assert.deepEqual(toFeeds([[[1], [2], [3], [4]]], [window]).window.shape, [1, 4, 1]);
  assert.deepEqual(toFeeds(new Float32Array(4), [window]).window.shape, [1, 4, 1]);
  assert.deepEqual(toFeeds({ data: [1, 2, 3, 4], shape: [1, 4, 1] }, [window]).window.data, [1, 2, 3, 4]);
});

test('a wrong shape names the input, the expected signature and what came', () => {
  assert.throws(() => toFeeds([1, 2, 3], [window]), /input 'window': expected float32\[\?, 4, 1\], got shape \[3\] with 3 values/);
});

test('ragged rows, text and NaN are refused with one message each', () => {
  assert.throws(() => toFeeds([[[1], [2], [3], [4]], [[1]]], [window]), /ragged/);
  assert.throws(() => toFeeds(['a', 'b', 'c', 'd'], [window]), /expected numbers \(float32\), got string/);
  assert.throws(() => toFeeds([1, NaN, 3, 4], [window]), /finite values, got NaN or Inf at index \[0, 1, 0\]/);
  assert.doesNotThrow(() => toFeeds([1, NaN, 3, 4], [window], { allowNaN: true }));
  // Finite as a double, Inf once stored as float32 (the cloud's astype makes it Inf and refuses it).
  assert.throws(() => toFeeds([1, 2, 1e308, 4], [window]), /finite values, got NaN or Inf at index \[0, 2, 0\]/);
  assert.doesNotThrow(() => toFeeds([1, 2, 3.4e38, 4], [window]));
});

test('several inputs go by name: missing and unexpected names are refused', () => {
  const specs = [window, { name: 'rate', dtype: 'float32', shape: [null, 1] }];
  assert.throws(() => toFeeds([1, 2, 3, 4], specs), /the model has 2 inputs \(window, rate\)/);
  assert.throws(() => toFeeds({ window: [1, 2, 3, 4] }, specs), /missing input 'rate'/);
  assert.throws(() => toFeeds({ window: [1, 2, 3, 4], rate: [1], extra: [1] }, specs), /unexpected input 'extra'/);
  assert.throws(() => toFeeds(null, specs), /predict\(\) needs an input/);
});

test('describeSpec and zeroFeeds follow the signature', () => {
  assert.equal(describeSpec(window), 'float32[?, 4, 1]');
  assert.deepEqual(zeroFeeds([window]).window, { dtype: 'float32', shape: [1, 4, 1], data: [0, 0, 0, 0] });
});

test('a browser file pinned at export takes only its pinned shapes', async () => {
  const { pinnedShapeProblem } = await import('../src/feeds.js');
  const pinned = [{ name: 'x', dtype: 'float32', shape: [1, 3, 48, 192] }];
  const fed = (shape) => ({ x: { dtype: 'float32', shape, data: [] } });
  assert.equal(pinnedShapeProblem(fed([1, 3, 48, 192]), pinned), null);
  assert.equal(pinnedShapeProblem(fed([1, 3, 48, 192]), undefined), null);
  assert.match(pinnedShapeProblem(fed([2, 3, 48, 320]), pinned),
    /takes input 'x' only as float32\[1, 3, 48, 192\] \(pinned at export\), this one is \[2, 3, 48, 320\]/);
  assert.equal(pinnedShapeProblem(fed([5, 4]), [{ name: 'x', dtype: 'float32', shape: [null, 4] }]), null);
});

test('a fractional number for an integer input is refused, as the cloud refuses it', () => {
  const ids = { name: 'ids', dtype: 'int64', shape: [null, 3] };
  assert.throws(() => toFeeds([4, 1.5, 2], [ids]), /input 'ids': expected int64\[\?, 3\], got fractional numbers \(1\.5 at index \[0, 1\]\)/);
  assert.deepEqual(toFeeds([4, 1, 2], [ids]).ids.data, [4, 1, 2]);
  assert.doesNotThrow(() => toFeeds([0.5, 1.5, 2.5], [{ ...ids, dtype: 'float32' }]));
});
