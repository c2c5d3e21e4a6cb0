// Benchmark page logic: start to first prediction, then steady-state timings, for one runtime.
// The first prediction's time is performance.now() itself: milliseconds since navigation start,
// so it covers fetching the runtime and the model, compiling, creating the session and running.

import { createOnnxjsSession, runOnnxjs } from '../src/onnxjs-runtime.js';
import { createOrtSession, runOrt } from '../src/ortweb-runtime.js';
import { predictCloud } from '../src/cloud.js';
import { fetchJson, fetchSample } from '../src/registry.js';

const RUNTIMES = ['onnxjs-cpu', 'onnxjs-wasm', 'onnxjs-webgl', 'ortweb-wasm', 'cloud'];

async function makeRunner({ model, version, runtime, cloud }) {
  if (!RUNTIMES.includes(runtime)) throw new Error(`unknown runtime ${runtime}; choose one of ${RUNTIMES.join(', ')}`);
  const base = `/models/${encodeURIComponent(model)}/${encodeURIComponent(version)}`;
  const [manifest, feeds] = await Promise.all([fetchJson(`${base}/model.json`), fetchSample(base)]);
  const modelUrl = `${base}/${manifest.edge.file}`;
  if (runtime.startsWith('onnxjs-')) {
    const session = await createOnnxjsSession(modelUrl, runtime.slice('onnxjs-'.length));
    const names = manifest.inputs.map((input) => input.name);
    return () => runOnnxjs(session, feeds, names);
  }
  if (runtime === 'ortweb-wasm') {
    const session = await createOrtSession(modelUrl);
    return () => runOrt(session, feeds);
  }
  if (!cloud) throw new Error('runtime=cloud needs a cloud=URL parameter');
  return () => predictCloud(cloud, model, feeds);
}

/** Run until `seconds` pass or `maxRuns` are done; sorted per-run milliseconds. */
async function steady(run, { seconds, maxRuns }) {
  const times = [];
  const stop = performance.now() + seconds * 1000;
  while (times.length < maxRuns && performance.now() < stop) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b);
}

async function main() {
  const params = Object.fromEntries(new URLSearchParams(globalThis.location.search));
  const run = await makeRunner({ version: '1', ...params });
  const outputs = await run();
  const firstMs = performance.now();
  window.bench = { firstMs, outputs, isolated: globalThis.crossOriginIsolated, steady: (args) => steady(run, args) };
}

main()
  .catch((error) => {
    window.benchError = String(error && error.message ? error.message : error);
  })
  .finally(() => {
    window.benchReady = true;
  });
