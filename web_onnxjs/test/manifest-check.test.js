// The page's check of model.json / latest.json (src/manifest-check.js): what export writes passes,
// and each way a manifest can be wrong is a bad-model EdgecloudError naming the field, not a TypeError.
// (tests/registry/test_writers.py runs the same check on manifests every Python writer wrote.)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CODES, EdgecloudError } from '../src/errors.js';
import { checkLatest, checkManifest } from '../src/manifest-check.js';

const SHA = 'a'.repeat(64);

function manifest() {
  return {
    schema: 1, name: 'm', version: '2', created: '2026-12-07T00:00:00+00:00',
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 2] }],
    files: { 'model.onnx': { sha256: SHA, size: 10, role: 'cloud' }, 'model.edge.onnx': { sha256: SHA, size: 12, role: 'edge' },
             'train.onnx': { sha256: SHA, size: 30, role: 'train' } },
    cloud: { file: 'model.onnx' },
    edge: { file: 'model.edge.onnx', runtime: 'onnxjs', lowered: true, passes: [], backends: ['cpu'], verified: {},
            ranking: [{ runtime: 'onnxjs', backend: 'cpu', median_ms: 1.5, download_bytes: 10 }] },
    training: { file: 'train.onnx', edge: { file: 'train.onnx', runtime: 'onnxjs' },
                parameters: [{ name: 'w', shape: [4, 2], locations: { 'model.onnx': { offset: 0, length: 32 } } }] },
    serving: { allow_nan: false },
  };
}

test('a manifest as export writes it passes unchanged', () => {
  const good = manifest();
  assert.equal(checkManifest(good), good);
});

const CASES = {
  'not an object': [(m) => null, /model.json of m v2 is not a JSON object/],
  'unknown major': [(m) => ({ ...m, schema: 2 }), /has schema 2, which this page cannot read \(it reads schema 1\)/],
  'no major': [(m) => { delete m.schema; return m; }, /names no schema version/],
  'version as number': [(m) => ({ ...m, version: 2 }), /version must be a whole number as text/],
  'inputs missing': [(m) => { delete m.inputs; return m; }, /inputs must be a non-empty list of tensors/],
  'bad dimension': [(m) => { m.outputs[0].shape = [-1]; return m; }, /outputs\[0\]\.shape must list sizes/],
  'no hash': [(m) => { delete m.files['model.onnx'].sha256; return m; }, /files\.model\.onnx needs a SHA-256/],
  'edge file unlisted': [(m) => { m.edge.file = 'gone.onnx'; return m; }, /edge\.file names gone\.onnx, which files does not list/],
  'no edge': [(m) => { delete m.edge; return m; }, /edge must be an object/],
  'ranking not a list': [(m) => { m.edge.ranking = {}; return m; }, /edge\.ranking must be a list/],
  'training without parameters': [(m) => { m.training.parameters = []; return m; }, /training\.parameters must be a non-empty list/],
  'training edge unlisted': [(m) => { m.training.edge.file = 'x.onnx'; return m; }, /training\.edge\.file names x\.onnx/],
  'allow_nan as text': [(m) => { m.serving.allow_nan = 'yes'; return m; }, /serving\.allow_nan must be true or false/],
};

for (const [name, [change, message]] of Object.entries(CASES)) {
  test(`bad-model, never a TypeError: ${name}`, () => {
    assert.throws(() => checkManifest(change(manifest()), 'model.json of m v2'), (error) => {
      assert.ok(error instanceof EdgecloudError, String(error));
      assert.equal(error.code, CODES.BAD_MODEL);
      assert.match(error.message, message);
      return true;
    });
  });
}

test('latest.json: the version as text, bad-model when it names none', () => {
  assert.equal(checkLatest({ name: 'm', version: '3', manifest: '3/model.json' }), '3');
  assert.equal(checkLatest({ name: 'm', version: 3 }), '3');
  for (const bad of [null, {}, { version: 'three' }, { version: '../1' }]) {
    assert.throws(() => checkLatest(bad), (error) => error.code === CODES.BAD_MODEL && /latest.json/.test(error.message));
  }
});
