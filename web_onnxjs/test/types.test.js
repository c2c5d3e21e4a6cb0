// types/index.d.ts against the code it describes: the package's exports, the constants' keys and
// values, the handler's methods, the assets option. (The shapes of what a real handler returns are
// held against the declarations in Chromium: tests/web/test_npm_package.py.)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { constType, exportedValues, literals, members, staticMembers } from '../types/check/members.js';
import * as api from '../src/index.js';
import { resolveAssets, runtimeFileUrls } from '../src/assets.js';

const sorted = (values) => [...values].sort();

test('the declarations export exactly the values src/index.js exports', () => {
  assert.deepEqual(sorted(exportedValues()), sorted(Object.keys(api)));
});

test('CODES and ErrorCode list every code the errors module has, with its value', () => {
  const declared = constType('CODES');
  assert.deepEqual(declared, { ...api.CODES });
  assert.deepEqual(sorted(literals('ErrorCode')), sorted(Object.values(api.CODES)));
});

test('the policy, privacy modes and assets types name what the defaults hold', () => {
  const optional = ['device', 'environment']; // no default: read from navigator unless given
  assert.deepEqual(sorted(members('Policy')), sorted([...Object.keys(api.DEFAULT_POLICY), ...optional]));
  assert.deepEqual(sorted(literals('PrivacyMode')), sorted(api.PRIVACY_MODES));
  assert.deepEqual(sorted(literals('OnnxjsBackend')), sorted(api.DEFAULT_POLICY.onnxjsBackends));
  assert.deepEqual(sorted(members('Assets')), sorted(Object.keys(api.DEFAULT_ASSETS)));
  assert.deepEqual(sorted(Object.keys(constType('DEFAULT_ASSETS'))), sorted(Object.keys(api.DEFAULT_ASSETS)));
});

test("PredictionHandler's declared methods and getters are the class's public ones", () => {
  const instanceFields = ['updater']; // set in the constructor, not on the prototype
  const prototype = Object.getOwnPropertyNames(api.PredictionHandler.prototype).filter((n) => n !== 'constructor');
  const statics = Object.getOwnPropertyNames(api.PredictionHandler).filter((n) => typeof api.PredictionHandler[n] === 'function');
  const declaredStatics = staticMembers('PredictionHandler');
  assert.deepEqual(sorted(declaredStatics), sorted(statics));
  const declared = members('PredictionHandler').filter((n) => !declaredStatics.includes(n) && !instanceFields.includes(n));
  assert.deepEqual(sorted(declared), sorted(prototype));
});

test('assets: relative URLs resolve against the page, folders end in a slash, workers default to null', () => {
  const page = 'https://app.example/shop/index.html';
  assert.deepEqual(resolveAssets({ onnxjs: 'runtimes/onnxjs', edgeWorker: '/js/edge-worker.js' }, page), {
    onnxjs: 'https://app.example/shop/runtimes/onnxjs/',
    onnxruntimeWeb: 'https://app.example/vendor/onnxruntime-web/',
    edgeWorker: 'https://app.example/js/edge-worker.js',
    trainWorker: null,
  });
  assert.equal(resolveAssets({ onnxruntimeWeb: new URL('https://cdn.invalid/ort/') }, page).onnxruntimeWeb, 'https://cdn.invalid/ort/');
});

test('a wrong assets option is one bad-input error naming it', () => {
  const page = 'https://app.example/';
  const bad = (assets, pattern) =>
    assert.throws(() => resolveAssets(assets, page), (e) => e instanceof api.EdgecloudError && e.code === 'bad-input' && pattern.test(e.message));
  bad({ ortWasm: '/x/' }, /unknown assets option 'ortWasm'; use onnxjs, onnxruntimeWeb, edgeWorker, trainWorker/);
  bad({ onnxjs: 7 }, /assets\.onnxjs must be a URL/);
  bad({ onnxjs: '' }, /assets\.onnxjs must be a URL/);
  bad('/vendor/', /assets must be an object/);
  bad({ edgeWorker: 'http://[bad' }, /assets\.edgeWorker is not a URL/);
});

test("each runtime's files are listed under its own folder", () => {
  const assets = resolveAssets({ onnxjs: '/r/js', onnxruntimeWeb: 'https://static.example/ort/' }, 'https://app.example/p/');
  assert.deepEqual(runtimeFileUrls('onnxjs', assets), ['https://app.example/r/js/onnx.min.js', 'https://app.example/r/js/onnx-wasm.wasm']);
  assert.deepEqual(runtimeFileUrls('onnxruntime-web', assets), ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']
    .map((file) => `https://static.example/ort/${file}`));
});
