// Is a runtime's first-visit download already in this browser's HTTP cache? A fetch with
// `cache: 'only-if-cached'` answers from the cache or fails, and never touches the network, so the
// handler can ask before choosing a big runtime on a slow connection.
//
// Why the HTTP cache and not a cache of our own: the runtimes fetch their own files (ONNX.js its
// script and wasm, onnxruntime-web its module, glue and ~14 MB wasm), and those land in the HTTP
// cache, where the next load finds them; a Cache Storage copy would need a second download, and
// Resource Timing only knows the current page's loads. Limits: `only-if-cached` needs same-origin
// URLs (a runtime served from another origin is reported not cached: the careful answer), and an
// entry the browser evicted is reported as such.

import { assetUrls as onnxjsUrls } from './onnxjs-runtime.js';
import { assetUrls as ortUrls } from './ortweb-runtime.js';

const ASSETS = { onnxjs: onnxjsUrls, 'onnxruntime-web': ortUrls };

async function inHttpCache(url) {
  try {
    const response = await fetch(url, { cache: 'only-if-cached', mode: 'same-origin' });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false; // not cached, cross-origin, or a browser without only-if-cached
  }
}

/** True when every file `runtime` downloads on a first visit is in the HTTP cache. */
export async function runtimeCached(runtime) {
  const urls = ASSETS[runtime] ? ASSETS[runtime]() : [];
  if (urls.length === 0) return false;
  const found = await Promise.all(urls.map(inHttpCache));
  return found.every(Boolean);
}

/** {runtime: cached?} for each runtime named. */
export async function cachedRuntimes(runtimes) {
  const unique = [...new Set(runtimes)];
  const found = await Promise.all(unique.map(runtimeCached));
  return Object.fromEntries(unique.map((runtime, i) => [runtime, found[i]]));
}
