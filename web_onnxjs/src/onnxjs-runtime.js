// ONNX.js 0.1.8 (cpu / wasm / webgl), loaded from our own server, never a CDN: onnx.min.js and
// onnx-wasm.wasm from one folder, runtimeAssets().onnxjs (default /vendor/onnxjs/).
// ONNX.js is a classic UMD script that defines `onnx` globally. Its emscripten part looks for
// onnx-wasm.wasm next to `document.currentScript` when its wasm backend starts, else at the
// server root: in a worker (where the package runs it) a stand-in document names the script.

import { runtimeAssets } from './assets.js';
import { toTypedArray } from './tensors.js';

let loading = null;

/**
 * What ONNX.js asks of `document` in a worker: currentScript (where its wasm file is) and, for
 * webgl, createElement returning a canvas (an OffscreenCanvas).
 */
function workerDocument(scriptUrl) {
  const canvas = typeof OffscreenCanvas === 'undefined' ? {} : { createElement: () => new OffscreenCanvas(1, 1) };
  return { currentScript: { src: scriptUrl }, ...canvas };
}

/** Load onnx.min.js once (in a page or a worker); resolves to the global `onnx`. */
export function loadOnnxjs() {
  if (globalThis.onnx) return Promise.resolve(globalThis.onnx);
  if (!loading) {
    const scriptUrl = new URL('onnx.min.js', new URL(runtimeAssets().onnxjs, globalThis.location.href)).href;
    loading = new Promise((resolve, reject) => {
      if (typeof importScripts === 'function') {
        // A worker (classic or module). ONNX.js's UMD wrapper writes its exports onto `window`;
        // importScripts is refused in module workers, and import() would run the script in strict
        // mode, which its emscripten part does not survive: evaluate it as a classic script.
        globalThis.window ??= globalThis;
        globalThis.document ??= workerDocument(scriptUrl);
        fetch(scriptUrl)
          .then((response) => {
            if (!response.ok) throw new Error(`cannot load ${scriptUrl}: ${response.status}`);
            return response.text();
          })
          .then((text) => {
            (0, eval)(`${text}\n//# sourceURL=${scriptUrl}`);
            resolve(globalThis.onnx);
          })
          .catch(reject);
        return;
      }
      const script = document.createElement('script');
      script.src = scriptUrl;
      script.onload = () => resolve(globalThis.onnx);
      script.onerror = () => reject(new Error(`cannot load ${scriptUrl}`));
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

/** ONNX.js holds int64 as int32: a value beyond int32 would wrap silently, so it fails the edge instead. */
function int64AsInt32(name, values) {
  const data = Int32Array.from(values, Number);
  const index = data.findIndex((v, i) => v !== Number(values[i]));
  if (index >= 0) throw new Error(`input ${name}: ONNX.js holds int64 as int32, and ${values[index]} at index ${index} does not fit`);
  return data;
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
    const data = plain.dtype === 'int64' ? int64AsInt32(name, plain.data) : toTypedArray(plain);
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
