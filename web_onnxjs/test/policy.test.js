// Routing policy and runtime choice: pure functions, so they are tested here without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULT_POLICY, chooseEdgeRuntime, decideRoute, deviceCapability } from '../src/policy.js';

const capable = { cores: 4, memoryGb: 8, online: true, saveData: false };
const route = (over = {}) =>
  decideRoute({ privacy: 'auto', elements: 250, device: capable, edgeState: 'ready', hasCloud: true, policy: DEFAULT_POLICY, ...over });

test('local-only never includes the cloud, even when the edge cannot run the model', () => {
  assert.deepEqual(route({ privacy: 'local-only', edgeState: 'unavailable' }).order, ['edge']);
});

test('explicit preferences give both places in their order', () => {
  assert.deepEqual(route({ privacy: 'prefer-edge' }).order, ['edge', 'cloud']);
  assert.deepEqual(route({ privacy: 'prefer-cloud' }).order, ['cloud', 'edge']);
});

test('without a cloud every mode runs on the edge only', () => {
  for (const privacy of ['auto', 'prefer-cloud', 'prefer-edge']) {
    assert.deepEqual(route({ privacy, hasCloud: false }).order, ['edge']);
  }
});

test('auto weighs input size, cores, memory, the edge state and the network', () => {
  assert.deepEqual(route().order, ['edge', 'cloud']);
  assert.deepEqual(route({ elements: DEFAULT_POLICY.autoEdgeMaxElements + 1 }).order, ['cloud', 'edge']);
  assert.deepEqual(route({ device: { ...capable, cores: 1 } }).order, ['cloud', 'edge']);
  assert.deepEqual(route({ device: { ...capable, memoryGb: 0.5 } }).order, ['cloud', 'edge']);
  assert.deepEqual(route({ edgeState: 'unavailable' }).order, ['cloud', 'edge']);
  // Offline or saving data: edge first even for a large input.
  assert.deepEqual(route({ device: { ...capable, online: false }, elements: 1e6 }).order, ['edge', 'cloud']);
  assert.deepEqual(route({ device: { ...capable, saveData: true } }).order, ['edge', 'cloud']);
});

test('an unknown privacy mode is refused, naming the modes', () => {
  assert.throws(() => route({ privacy: 'cloud-only' }), /unknown privacy mode "cloud-only"; use one of auto/);
});

test('deviceCapability reads navigator-like values with safe defaults', () => {
  assert.deepEqual(deviceCapability({}), { cores: 1, memoryGb: null, online: true, saveData: false, effectiveType: null, downlinkMbps: null });
  assert.equal(deviceCapability({ onLine: false }).online, false);
  assert.equal(deviceCapability({ connection: { saveData: true } }).saveData, true);
  const connection = deviceCapability({ connection: { effectiveType: '3g', downlink: 0.4 } });
  assert.deepEqual([connection.effectiveType, connection.downlinkMbps], ['3g', 0.4]);
});

const manifest = (edge) => ({ name: 'm', version: '1', edge: { file: 'model.edge.onnx', ...edge } });

test('ONNX.js only on backends the browser verification passed', () => {
  const plan = chooseEdgeRuntime(
    manifest({
      runtime: 'onnxjs',
      verified: { file: 'model.edge.onnx', results: [
        { runtime: 'onnxjs', backend: 'wasm', passed: false },
        { runtime: 'onnxjs', backend: 'cpu', passed: true },
      ] },
    }),
    DEFAULT_POLICY,
  );
  assert.deepEqual(plan, { runtime: 'onnxjs', backends: ['cpu'] });
});

test('a verification of another file says nothing; the static check decides', () => {
  const plan = chooseEdgeRuntime(
    manifest({ runtime: 'onnxjs', backends: ['cpu'], verified: { file: 'model.onnx', results: [{ runtime: 'onnxjs', backend: 'cpu', passed: false }] } }),
    DEFAULT_POLICY,
  );
  assert.deepEqual(plan, { runtime: 'onnxjs', backends: ['cpu'] });
});

test('every ONNX.js backend failed → onnxruntime-web; marked for it → onnxruntime-web', () => {
  const failed = manifest({
    runtime: 'onnxjs',
    verified: { file: 'model.edge.onnx', results: ['wasm', 'cpu', 'webgl'].map((backend) => ({ runtime: 'onnxjs', backend, passed: false })) },
  });
  assert.deepEqual(chooseEdgeRuntime(failed, DEFAULT_POLICY), { runtime: 'onnxruntime-web', backends: ['wasm'] });
  assert.equal(chooseEdgeRuntime(manifest({ runtime: 'onnxruntime-web' }), DEFAULT_POLICY).runtime, 'onnxruntime-web');
});

test('a manifest without an edge file is refused', () => {
  assert.throws(() => chooseEdgeRuntime({ name: 'm', version: '2' }, DEFAULT_POLICY), /m v2 names no edge file/);
});
