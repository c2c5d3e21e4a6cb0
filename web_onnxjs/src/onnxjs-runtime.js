// ONNX.js 0.1.8 (cpu / wasm / webgl), loaded from our own server, never a CDN.
// ONNX.js is a classic UMD script that defines `onnx` globally; it fetches /onnx-wasm.wasm
// from the server root for its wasm backend.

import { toTypedArray } from './tensors.js';

const SCRIPT_URL = '/vendor/onnxjs/onnx.min.js';
const WASM_URL = '/onnx-wasm.wasm'; // ONNX.js asks for it at the server root
let loading = null;

/** The files a first visit downloads to run ONNX.js (edgecloud/runtime_files.py lists the same). */
export function assetUrls() {
  return [SCRIPT_URL, WASM_URL];
}

/** Load onnx.min.js once (in a page or a worker); resolves to the global `onnx`. */
export function loadOnnxjs() {
  if (globalThis.onnx) return Promise.resolve(globalThis.onnx);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      if (typeof importScripts === 'function') {
        // A worker (classic or module). ONNX.js's UMD wrapper writes its exports onto `window`;
        // importScripts is refused in module workers, and import() would run the script in strict
        // mode, which its emscripten part does not survive: evaluate it as a classic script.
        globalThis.window ??= globalThis;
        fetch(SCRIPT_URL)
          .then((response) => {
            if (!response.ok) throw new Error(`cannot load ${SCRIPT_URL}: ${response.status}`);
            return response.text();
          })
          .then((text) => {
            (0, eval)(`${text}\n//# sourceURL=${new URL(SCRIPT_URL, globalThis.location.href).href}`);
            resolve(globalThis.onnx);
          })
          .catch(reject);
        return;
      }
      const script = document.createElement('script');
      script.src = SCRIPT_URL;
      script.onload = () => resolve(globalThis.onnx);
      script.onerror = () => reject(new Error(`cannot load ${SCRIPT_URL}`));
      document.head.appendChild(script);
    });
  }
  return loading;
}

/** An ONNX.js session on exactly one backend (a backendHint never falls back silently). */
export async function createOnnxjsSession(model, backend) {
  const onnx = await loadOnnxjs();
  const session = new onnx.InferenceSession({ backendHint: backend });
  await session.loadModel(model);
  return session;
}

/**
 * Run with plain tensors keyed by input name; plain tensors back. With `inputNames` the tensors go
 * in that (the model's) order; without, by name (a Map), so the caller need not know the order.
 */
export async function runOnnxjs(session, feeds, inputNames = null) {
  const onnx = await loadOnnxjs();
  const toTensor = (name) => {
    const plain = feeds[name];
    if (!plain) throw new Error(`missing input ${name}`);
    const dtype = plain.dtype === 'int64' ? 'int32' : plain.dtype;
    const data = plain.dtype === 'int64' ? Int32Array.from(plain.data) : toTypedArray(plain);
    return new onnx.Tensor(data, dtype, plain.shape);
  };
  const tensors = inputNames ? inputNames.map(toTensor) : new Map(Object.keys(feeds).map((name) => [name, toTensor(name)]));
  const results = await session.run(tensors);
  const outputs = {};
  for (const [name, tensor] of results.entries()) {
    outputs[name] = { dtype: tensor.type, shape: Array.from(tensor.dims), data: Array.from(tensor.data) };
  }
  return outputs;
}
