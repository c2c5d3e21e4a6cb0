// Is a runtime's first-visit download already in this browser's HTTP cache? The handler notes
// (localStorage) each runtime it loaded; for a noted one, a fetch with `cache: 'only-if-cached'`
// confirms the files are still there: it answers from the cache or fails, never from the network.
//
// Why the HTTP cache and not a cache of our own: the runtimes fetch their own files (ONNX.js its
// script and wasm, onnxruntime-web its module, glue and ~14 MB wasm), and those land in the HTTP
// cache, where the next load finds them; a Cache Storage copy would cost a second download, and
// Resource Timing only knows the current page's loads. The note comes first because Chromium logs
// every cache miss of such a fetch as a console error ("net::ERR_CACHE_MISS"): without it, every
// first visit on data saver would log one per file. Limits: `only-if-cached` needs same-origin URLs
// (a runtime served from another origin counts as not cached: the careful answer); a runtime some
// other page of the origin loaded without the handler is not noted, so counts as not cached either.

import { RUNTIME_FILES, runtimeFileUrls } from './assets.js';

const NOTE = 'edgecloud-runtime-loaded:'; // + runtime → ISO time it last loaded

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage blocked: nothing is noted, everything counts as not cached
  }
}

/** Note that `runtime` just loaded here (its files went through the HTTP cache). */
export function noteRuntimeLoaded(runtime) {
  try {
    storage()?.setItem(NOTE + runtime, new Date().toISOString());
  } catch {
    // quota or blocked storage: the next slow-network visit just probes nothing
  }
}

async function inHttpCache(url) {
  try {
    const response = await fetch(url, { cache: 'only-if-cached', mode: 'same-origin' });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false; // evicted, cross-origin, or a browser without only-if-cached
  }
}

/**
 * True when `runtime` loaded here before and every file of its first-visit download is still
 * cached; `assets`: resolveAssets()'s answer, where the handler's runtimes come from.
 */
export async function runtimeCached(runtime, assets) {
  const store = storage();
  if (!RUNTIME_FILES[runtime] || !store || store.getItem(NOTE + runtime) === null) return false;
  const found = (await Promise.all(runtimeFileUrls(runtime, assets).map(inHttpCache))).every(Boolean);
  if (!found) store.removeItem(NOTE + runtime); // evicted: do not probe (and log misses) again
  return found;
}

/** {runtime: cached?} for each runtime named, its files under `assets`. */
export async function cachedRuntimes(runtimes, assets) {
  const unique = [...new Set(runtimes)];
  const found = await Promise.all(unique.map((runtime) => runtimeCached(runtime, assets)));
  return Object.fromEntries(unique.map((runtime, i) => [runtime, found[i]]));
}
