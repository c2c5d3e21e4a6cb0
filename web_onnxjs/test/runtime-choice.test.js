// Which edge runtime runs a model (policy.js planEdgeRuntime): the fastest verified by default, the
// smallest download on a slow network until the big one is cached, policy.edgeRuntime to force one.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULT_POLICY, parseEdgeRuntime, planEdgeRuntime, rankedRuntimes, runtimesToProbe, slowNetwork } from '../src/policy.js';

const ORT_BYTES = 14314404;
const ONNXJS_BYTES = 520028;
const fast = { cores: 4, memoryGb: 8, online: true, saveData: false, effectiveType: '4g', downlinkMbps: 10 };
const rows = [
  { runtime: 'onnxruntime-web', backend: 'wasm', median_ms: 0.8, download_bytes: ORT_BYTES },
  { runtime: 'onnxjs', backend: 'wasm', median_ms: 8.9, download_bytes: ONNXJS_BYTES },
  { runtime: 'onnxjs', backend: 'cpu', median_ms: 11.2, download_bytes: ONNXJS_BYTES },
];
const verified = (passed = rows) => ({
  file: 'model.edge.onnx',
  results: [...passed.map((r) => ({ runtime: r.runtime, backend: r.backend, passed: true })),
            { runtime: 'onnxjs', backend: 'webgl', passed: false }],
});
const manifest = (edge = {}) => ({
  name: 'fc', version: '3',
  edge: { file: 'model.edge.onnx', runtime: 'onnxjs', backends: ['cpu', 'wasm', 'webgl'], verified: verified(), ranking: rows, ...edge },
});
const plan = ({ edge, policy = {}, device = {}, cached = {} } = {}) =>
  planEdgeRuntime({ manifest: manifest(edge), policy: { ...DEFAULT_POLICY, ...policy }, device: { ...fast, ...device }, cached });
const pairs = (p) => p.candidates.map((c) => `${c.runtime}/${c.backend}` + (c.file === 'model.edge.onnx' ? '' : ` on ${c.file}`));

test('by default the fastest verified pair goes first, the rest follow in ranking order', () => {
  const chosen = plan();
  assert.deepEqual(pairs(chosen), ['onnxruntime-web/wasm', 'onnxjs/wasm', 'onnxjs/cpu']);
  assert.equal(chosen.reason, 'fastest verified: onnxruntime-web/wasm, 0.80 ms (next: onnxjs/wasm, 8.90 ms)');
});

test('data saver or a slow connection: the small download first, unless the big one is cached', () => {
  for (const device of [{ saveData: true }, { effectiveType: '3g' }, { effectiveType: '2g' }, { downlinkMbps: 0.5 }]) {
    const chosen = plan({ device });
    assert.deepEqual(pairs(chosen), ['onnxjs/wasm', 'onnxjs/cpu', 'onnxruntime-web/wasm'], JSON.stringify(device));
    assert.match(chosen.reason, /onnxruntime-web's 14\.3 MB are not cached: onnxjs\/wasm \(0\.5 MB, 8\.90 ms\) instead of the fastest verified, onnxruntime-web\/wasm \(0\.80 ms\)/);
  }
  assert.match(plan({ device: { saveData: true } }).reason, /^data saver is on and /);
  const cached = plan({ device: { saveData: true }, cached: { 'onnxruntime-web': true } });
  assert.deepEqual(pairs(cached)[0], 'onnxruntime-web/wasm');
  assert.match(cached.reason, /data saver is on but its files are cached$/);
});

test('a slow network changes nothing when the fastest is also the smallest download', () => {
  const onnxjsFirst = [rows[1], rows[0]];
  const chosen = plan({ edge: { ranking: onnxjsFirst }, device: { saveData: true } });
  assert.deepEqual(pairs(chosen), ['onnxjs/wasm', 'onnxruntime-web/wasm']);
  assert.match(chosen.reason, /it is also the smallest download$/);
});

test('slowNetwork: data saver, 2g/3g, or a downlink under policy.slowDownlinkMbps', () => {
  assert.equal(slowNetwork(fast, DEFAULT_POLICY), null);
  assert.equal(slowNetwork({ ...fast, effectiveType: 'slow-2g' }, DEFAULT_POLICY), 'the connection is slow-2g');
  assert.equal(slowNetwork({ ...fast, downlinkMbps: 0.5 }, DEFAULT_POLICY), "the connection's downlink is 0.5 Mb/s < 1");
  assert.equal(slowNetwork({ ...fast, downlinkMbps: 5 }, { ...DEFAULT_POLICY, slowDownlinkMbps: 8 }) !== null, true);
  assert.equal(slowNetwork({ ...fast, effectiveType: null, downlinkMbps: null }, DEFAULT_POLICY), null);
});

test('policy.edgeRuntime forces a runtime (all its verified backends, fastest first) or one pair', () => {
  const onnxjs = plan({ policy: { edgeRuntime: 'onnxjs' } });
  assert.deepEqual(pairs(onnxjs), ['onnxjs/wasm', 'onnxjs/cpu']);
  assert.equal(onnxjs.reason, 'policy.edgeRuntime forces onnxjs');
  assert.deepEqual(pairs(plan({ policy: { edgeRuntime: 'onnxjs/cpu' } })), ['onnxjs/cpu']);
  // forcing wins over the network: the page asked for it
  assert.deepEqual(pairs(plan({ policy: { edgeRuntime: 'onnxruntime-web' }, device: { saveData: true } })), ['onnxruntime-web/wasm']);
});

test('policy.edgeRuntime that is unknown or not verified is one bad-input error naming what is allowed', () => {
  assert.throws(() => parseEdgeRuntime('tfjs'), (e) => e.code === 'bad-input' && /"tfjs" is not a browser runtime; use onnxjs, onnxruntime-web or one of onnxjs\/cpu/.test(e.message));
  assert.throws(() => parseEdgeRuntime('onnxruntime-web/webgpu'), /not a browser runtime/);
  assert.throws(() => parseEdgeRuntime(7), /policy.edgeRuntime 7 is not a browser runtime/);
  assert.throws(() => plan({ policy: { edgeRuntime: 'onnxjs/webgl' } }),
    (e) => e.code === 'bad-input' && e.message === 'policy.edgeRuntime "onnxjs/webgl" is not verified for fc v3; verified: onnxruntime-web/wasm, onnxjs/wasm, onnxjs/cpu');
});

test('the ranking keeps only passed pairs the page allows, and only about the edge file', () => {
  const edge = manifest().edge;
  assert.deepEqual(rankedRuntimes(edge, DEFAULT_POLICY).map((c) => c.medianMs), [0.8, 8.9, 11.2]);
  const noCpu = rankedRuntimes(edge, { ...DEFAULT_POLICY, onnxjsBackends: ['wasm'] });
  assert.deepEqual(noCpu.map((c) => `${c.runtime}/${c.backend}`), ['onnxruntime-web/wasm', 'onnxjs/wasm']);
  assert.deepEqual(noCpu.map((c) => c.file), ['model.edge.onnx', 'model.edge.onnx']);
  // a ranking row whose verification failed (or is missing) is never picked
  const failedOrt = { ...edge, verified: verified(rows.slice(1)) };
  assert.deepEqual(rankedRuntimes(failedOrt, DEFAULT_POLICY).map((c) => c.runtime), ['onnxjs', 'onnxjs']);
  assert.equal(rankedRuntimes({ ...edge, verified: { ...edge.verified, file: 'model.onnx' } }, DEFAULT_POLICY), null);
  assert.equal(rankedRuntimes({ ...edge, ranking: undefined }, DEFAULT_POLICY), null);
});

test('without a ranking (never verified) the edge entry decides, as before, and forcing stays within it', () => {
  const chosen = plan({ edge: { ranking: undefined, verified: {} } });
  assert.deepEqual(pairs(chosen), ['onnxjs/wasm', 'onnxjs/cpu', 'onnxjs/webgl']);
  assert.match(chosen.reason, /^no browser ranking in model.json \(edgecloud verify writes it\): onnxjs/);
  assert.deepEqual(pairs(plan({ edge: { ranking: undefined, verified: {}, runtime: 'onnxruntime-web' } })), ['onnxruntime-web/wasm']);
  assert.throws(() => plan({ edge: { ranking: undefined, verified: {} }, policy: { edgeRuntime: 'onnxruntime-web' } }),
    /"onnxruntime-web" is not verified for fc v3; allowed \(no browser verification is recorded; run edgecloud verify\): onnxjs\/wasm/);
  assert.throws(() => plan({ edge: { file: undefined } }), /fc v3 names no edge file/);
});

test('the HTTP cache is asked only on a slow network, only about the bigger downloads, never when forced', () => {
  const ask = (device, policy = {}) => runtimesToProbe({ manifest: manifest(), policy: { ...DEFAULT_POLICY, ...policy }, device: { ...fast, ...device } });
  assert.deepEqual(ask({}), []);
  assert.deepEqual(ask({ saveData: true }), ['onnxruntime-web']);
  assert.deepEqual(ask({ effectiveType: '3g' }, { edgeRuntime: 'onnxjs' }), []);
});

test('onnxruntime-web on the cloud file: ranked and planned with its file, only where that row passed', () => {
  const cloudRow = { runtime: 'onnxruntime-web', backend: 'wasm', file: 'model.onnx', median_ms: 0.4, download_bytes: ORT_BYTES };
  const table = verified();
  table.results.push({ runtime: 'onnxruntime-web', backend: 'wasm', file: 'model.onnx', passed: true });
  const chosen = plan({ edge: { ranking: [cloudRow, ...rows], verified: table } });
  assert.deepEqual(pairs(chosen), ['onnxruntime-web/wasm on model.onnx', 'onnxruntime-web/wasm', 'onnxjs/wasm', 'onnxjs/cpu']);
  assert.equal(chosen.reason, 'fastest verified: onnxruntime-web/wasm on model.onnx, 0.40 ms (next: onnxruntime-web/wasm, 0.80 ms)');
  // the edge file's verdict says nothing about the cloud file: without its own passed row it is not ranked
  assert.deepEqual(pairs(plan({ edge: { ranking: [cloudRow, ...rows] } }))[0], 'onnxruntime-web/wasm');
  // and a cloud-file row never stands in for the edge file in the older, unranked choice
  const onlyCloud = { file: 'model.edge.onnx', results: [{ runtime: 'onnxruntime-web', backend: 'wasm', file: 'model.onnx', passed: false }] };
  assert.deepEqual(pairs(plan({ edge: { ranking: undefined, verified: onlyCloud, runtime: 'onnxruntime-web' } })), ['onnxruntime-web/wasm']);
});
