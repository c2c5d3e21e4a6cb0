// Where the browser runtimes' files and the two worker scripts are served from. The defaults are
// `edgecloud serve`'s site (/vendor/… straight from node_modules); a page built with a bundler
// serves the files itself (`npx onnx-edgecloud-web-assets DIR` copies them) and says where in
// `PredictionHandler.create({assets})`. Nothing is ever fetched from a CDN.
//
// The page resolves every URL against its own address before handing it to a worker (a worker
// would resolve a relative URL against the worker script instead). Inside a worker,
// useAssets() says where its runtimes load from; the runtimes read runtimeAssets() when they load.

import { CODES, EdgecloudError } from './errors.js';

export const DEFAULT_ASSETS = Object.freeze({
  onnxjs: '/vendor/onnxjs/', // folder of onnx.min.js and onnx-wasm.wasm (onnxjs/dist/)
  onnxruntimeWeb: '/vendor/onnxruntime-web/', // folder of ort.wasm.min.mjs, ort-wasm-simd-threaded.{mjs,wasm}
  edgeWorker: null, // edge-worker.js; null: next to edge-client.js (new URL(..., import.meta.url))
  trainWorker: null, // train-worker.js; null: next to trainer.js
});

const FOLDERS = ['onnxjs', 'onnxruntimeWeb'];

/**
 * What each runtime loads from its folder, by runtime name: {folder (the assets key), files (as
 * named in its npm package's dist/)}. bin/copy-assets.js copies these.
 */
export const RUNTIME_FILES = Object.freeze({
  onnxjs: { folder: 'onnxjs', files: ['onnx.min.js', 'onnx-wasm.wasm'] },
  'onnxruntime-web': { folder: 'onnxruntimeWeb', files: ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'] },
});

/** The URLs of the files `runtime` loads, under the resolved `assets` (resolveAssets()'s answer). */
export function runtimeFileUrls(runtime, assets) {
  const { folder, files } = RUNTIME_FILES[runtime];
  return files.map((file) => new URL(file, assets[folder]).href);
}

/**
 * The page's assets option, checked and made absolute against `base` (the page's URL): folders end
 * in '/', worker URLs stay null when not given. Throws EdgecloudError (bad-input) naming the problem.
 */
export function resolveAssets(assets = {}, base = globalThis.location?.href) {
  if (assets === null || typeof assets !== 'object' || Array.isArray(assets)) {
    throw new EdgecloudError(CODES.BAD_INPUT, `assets must be an object such as {onnxjs: '/vendor/onnxjs/'}, got ${JSON.stringify(assets)}`);
  }
  const known = Object.keys(DEFAULT_ASSETS);
  const unknown = Object.keys(assets).filter((key) => !known.includes(key));
  if (unknown.length) {
    throw new EdgecloudError(CODES.BAD_INPUT, `unknown assets option ${unknown.map((k) => `'${k}'`).join(', ')}; use ${known.join(', ')}`);
  }
  const resolved = {};
  for (const key of known) {
    const value = assets[key] ?? DEFAULT_ASSETS[key];
    if (value === null) {
      resolved[key] = null;
      continue;
    }
    const text = value instanceof URL ? value.href : value;
    if (typeof text !== 'string' || text === '') {
      throw new EdgecloudError(CODES.BAD_INPUT, `assets.${key} must be a URL (a string or a URL object), got ${JSON.stringify(value)}`);
    }
    let url;
    try {
      url = new URL(text, base);
    } catch {
      throw new EdgecloudError(CODES.BAD_INPUT, `assets.${key} is not a URL: ${JSON.stringify(text)}`);
    }
    if (FOLDERS.includes(key) && !url.pathname.endsWith('/')) url.pathname += '/';
    resolved[key] = url.href;
  }
  return resolved;
}

let current = DEFAULT_ASSETS;

/** Inside a worker: load the runtimes from these folders ({onnxjs, onnxruntimeWeb}, absolute). */
export function useAssets(assets) {
  current = { ...DEFAULT_ASSETS, ...(assets ?? {}) };
}

/** The folders the runtimes of this realm load from. */
export function runtimeAssets() {
  return current;
}
