// The model store: registry files kept in Cache Storage, keyed by their versioned URL (those
// never change), every model file checked against model.json's SHA-256 before it is used. A
// pointer entry (NAME/current.json, never fetched) names the version this browser last verified,
// so a page opened offline still has its model.

import { CODES, EdgecloudError } from './errors.js';
import { checkLatest, checkManifest } from './manifest-check.js';
import { fetchJson } from './registry.js';

export const CACHE_NAME = 'edgecloud-models-v1';

/** Hex SHA-256 of bytes (SubtleCrypto: secure contexts only, which 127.0.0.1 and https are). */
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export class ModelStore {
  constructor({ registry = '/models', name, cacheName = CACHE_NAME }) {
    if (!name) throw new Error('ModelStore needs a model name');
    this.base = new URL(`${registry.replace(/\/+$/, '')}/${encodeURIComponent(name)}/`, globalThis.location.href).href;
    this.name = name;
    this.cacheName = cacheName;
  }

  versionUrl(version, file) {
    return new URL(`${encodeURIComponent(version)}/${file}`, this.base).href;
  }

  get pointerUrl() {
    return new URL('current.json', this.base).href;
  }

  #cache() {
    return caches.open(this.cacheName);
  }

  /** The version latest.json names now (always asks the server, bypassing the HTTP cache). */
  async latestVersion() {
    const url = new URL('latest.json', this.base).href;
    return checkLatest(await fetchJson(url, { cache: 'no-store' }), url);
  }

  /** The version this browser last verified and switched to, or null. */
  async currentVersion() {
    const hit = await (await this.#cache()).match(this.pointerUrl);
    return hit ? String((await hit.json()).version) : null;
  }

  async setCurrent(version) {
    const body = JSON.stringify({ version: String(version), switched: new Date().toISOString() });
    await (await this.#cache()).put(this.pointerUrl, new Response(body, { headers: { 'Content-Type': 'application/json' } }));
  }

  /**
   * model.json of a version: from the cache, else the server (then cached: versioned files are
   * immutable). Checked before use (bad-model otherwise); a bad one is never cached.
   */
  async manifest(version) {
    const url = this.versionUrl(version, 'model.json');
    const where = `model.json of ${this.name} v${version}`;
    const cache = await this.#cache();
    const hit = await cache.match(url);
    if (hit) return checkManifest(await hit.json(), where);
    const manifest = checkManifest(await fetchJson(url), where);
    await cache.put(url, new Response(JSON.stringify(manifest), { headers: { 'Content-Type': 'application/json' } }));
    return manifest;
  }

  /**
   * Bytes of one file of a version, verified against model.json. A cached copy that fails the
   * check is purged and fetched again once; a server copy that fails is never cached, and the
   * call throws edge-integrity.
   */
  async verifiedFile(version, manifest, file) {
    const entry = manifest.files && manifest.files[file];
    if (!entry || !entry.sha256) {
      throw new EdgecloudError(CODES.EDGE_INTEGRITY, `model.json of v${version} lists no SHA-256 for ${file}`);
    }
    const url = this.versionUrl(version, file);
    const cache = await this.#cache();
    const hit = await cache.match(url);
    if (hit) {
      const bytes = await hit.arrayBuffer();
      if ((await sha256Hex(bytes)) === entry.sha256) return bytes;
      await cache.delete(url);
    }
    const response = await fetch(url);
    if (!response.ok) throw new EdgecloudError(CODES.EDGE_UNAVAILABLE, `GET ${url} answered ${response.status}`);
    const bytes = await response.arrayBuffer();
    const actual = await sha256Hex(bytes);
    if (actual !== entry.sha256) {
      throw new EdgecloudError(
        CODES.EDGE_INTEGRITY,
        `${file} of v${version} has SHA-256 ${actual.slice(0, 12)}…, model.json says ${entry.sha256.slice(0, 12)}…: rejected`,
      );
    }
    await cache.put(url, new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream' } }));
    return bytes;
  }

  /** Drop every cached file of the versions not in `keep` (the pointer stays). */
  async prune(keep) {
    const cache = await this.#cache();
    const keepPrefixes = keep.map((v) => this.versionUrl(v, ''));
    for (const request of await cache.keys()) {
      if (request.url.startsWith(this.base) && request.url !== this.pointerUrl) {
        if (!keepPrefixes.some((prefix) => request.url.startsWith(prefix))) await cache.delete(request);
      }
    }
  }
}
