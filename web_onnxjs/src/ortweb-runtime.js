// onnxruntime-web (wasm), for models ONNX.js cannot run. Loaded only when first needed: its
// wasm binary is ~14 MB. Files come from our own server (/vendor/onnxruntime-web/), never a CDN.

import { toTypedArray } from './tensors.js';

const BASE = '/vendor/onnxruntime-web/';
let loading = null;

/** The files a first visit downloads to run onnxruntime-web (edgecloud/runtime_files.py lists the same). */
export function assetUrls() {
  return ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'].map((file) => `${BASE}${file}`);
}

/** Import ort.wasm.min.mjs once and point it at our wasm files; resolves to the `ort` namespace. */
export function loadOrtWeb() {
  if (!loading) {
    loading = import(`${BASE}ort.wasm.min.mjs`).then((ort) => {
      // env.wasm settings freeze after the first session: set them here, once.
      ort.env.wasm.wasmPaths = new URL(BASE, globalThis.location.href).href;
      ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1;
      ort.env.wasm.proxy = false;
      return ort;
    });
  }
  return loading;
}

/** A session on the wasm execution provider from a URL or bytes. */
export async function createOrtSession(model) {
  const ort = await loadOrtWeb();
  const source = typeof model === 'string' ? model : new Uint8Array(model);
  return ort.InferenceSession.create(source, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
}

/** Run with plain tensors keyed by input name; plain tensors back (a new ort.Tensor each run). */
export async function runOrt(session, feeds) {
  const ort = await loadOrtWeb();
  const inputs = {};
  for (const name of session.inputNames) {
    const plain = feeds[name];
    if (!plain) throw new Error(`missing input ${name}`);
    inputs[name] = new ort.Tensor(plain.dtype, toTypedArray(plain), plain.shape);
  }
  const results = await session.run(inputs);
  const outputs = {};
  for (const name of session.outputNames) {
    const tensor = results[name];
    const data = tensor.type === 'int64' ? Array.from(tensor.data, Number) : Array.from(tensor.data);
    outputs[name] = { dtype: tensor.type, shape: Array.from(tensor.dims), data };
  }
  return outputs;
}
