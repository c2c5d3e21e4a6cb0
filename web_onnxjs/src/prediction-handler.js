// The Prediction Handler: one model, two places. Per request it picks the edge (this browser,
// in a Web Worker) or the cloud (Multi Model Server), falls back to the other when one fails,
// and says where the answer came from and why.
//
//   const handler = await PredictionHandler.create({ registry: '/models', model: 'forecaster',
//                                                    cloud: 'http://127.0.0.1:8080', policy: {} });
//   const { outputs, ranOn, backend, latencyMs, modelVersion, fallbackReason } =
//     await handler.predict(window, { privacy: 'auto' });

import { CloudEndpoint } from './cloud.js';
import { EdgeRunner } from './edge-client.js';
import { CODES, EdgecloudError, asEdgecloudError } from './errors.js';
import { elementCount, toFeeds } from './feeds.js';
import { ModelStore } from './model-store.js';
import { DEFAULT_POLICY, chooseEdgeRuntime, decideRoute, deviceCapability } from './policy.js';
import { BackgroundUpdater } from './updater.js';

/** One loaded version: its manifest and its edge runner (or why the edge cannot run it). */
class LoadedVersion {
  constructor(version, manifest) {
    this.version = version;
    this.manifest = manifest;
    this.runner = null;
    this.edgeError = null; // EdgecloudError when the edge cannot run this version
  }

  get edgeState() {
    if (this.edgeError) return 'unavailable';
    return this.runner && this.runner.backend ? 'ready' : 'loading';
  }
}

export class PredictionHandler {
  /**
   * registry: URL of the registry folder ('/models'); model: its name; cloud: MMS inference URL
   * (optional); policy: see DEFAULT_POLICY; update: {enabled, intervalMs, environment, conditions}.
   */
  static async create({ registry = '/models', model, cloud = null, policy = {}, update = {} } = {}) {
    if (!model || typeof model !== 'string') throw new Error('PredictionHandler.create needs {model: "NAME"}');
    const handler = new PredictionHandler({ registry, model, cloud, policy, update });
    await handler.#start();
    return handler;
  }

  constructor({ registry, model, cloud, policy, update }) {
    this.name = model;
    this.policy = { ...DEFAULT_POLICY, ...policy };
    this.environment = this.policy.environment ?? globalThis.navigator ?? {};
    this.store = new ModelStore({ registry, name: model });
    this.cloud = cloud
      ? new CloudEndpoint(cloud, model, {
          timeoutMs: this.policy.cloudTimeoutMs,
          healthTtlMs: this.policy.healthTtlMs,
          environment: this.environment,
        })
      : null;
    this.updateOptions = { enabled: true, ...update };
    this.current = null; // LoadedVersion
    this.updater = null;
  }

  /** Start from the version this browser verified last (no network needed), else latest.json's. */
  async #start() {
    const remembered = await this.store.currentVersion();
    const latest = async () => {
      try {
        return await this.store.latestVersion();
      } catch (error) {
        throw new Error(`cannot reach the model registry and no version of ${this.name} is cached: ${error.message}`);
      }
    };
    try {
      this.current = await this.#open(remembered ?? (await latest()));
    } catch (error) {
      if (remembered === null) throw error;
      this.current = await this.#open(await latest()); // the remembered version is gone everywhere
    }
    if (this.current.edgeState !== 'unavailable') await this.store.setCurrent(this.current.version);
    this.updater = new BackgroundUpdater({
      store: this.store,
      currentVersion: () => this.current.version,
      adopt: (latest) => this.#adopt(latest),
      intervalMs: this.updateOptions.intervalMs,
      environment: this.updateOptions.environment ?? this.environment,
      conditions: this.updateOptions.conditions,
    });
    if (this.updateOptions.enabled) this.updater.start();
  }

  /** Manifest + verified edge file + a worker loading it. Edge trouble is recorded, not thrown. */
  async #open(version) {
    let manifest;
    try {
      manifest = await this.store.manifest(version);
    } catch (error) {
      throw new Error(`cannot load model.json of ${this.name} v${version}: ${error.message}`);
    }
    const loaded = new LoadedVersion(version, manifest);
    try {
      const plan = chooseEdgeRuntime(loaded.manifest, this.policy);
      const model = await this.store.verifiedFile(version, loaded.manifest, loaded.manifest.edge.file);
      loaded.runner = new EdgeRunner({ model, plan, inputs: loaded.manifest.inputs });
      loaded.runner.load().catch((error) => {
        loaded.edgeError = asEdgecloudError(error, CODES.EDGE_UNAVAILABLE);
      });
    } catch (error) {
      loaded.edgeError = asEdgecloudError(error, CODES.EDGE_UNAVAILABLE);
    }
    return loaded;
  }

  /** Background update: switch only when the new version verified AND its edge loaded. */
  async #adopt(version) {
    const next = await this.#open(version);
    if (next.runner) await next.runner.ready.catch(() => {});
    if (next.edgeError) {
      if (next.runner) next.runner.terminate();
      throw next.edgeError;
    }
    const previous = this.current;
    this.current = next;
    await this.store.setCurrent(version);
    if (previous.runner) previous.runner.terminate();
    await this.store.prune([version]);
    return true;
  }

  /** The version the edge runs now (a cloud answer names its own: `modelVersion` of predict's result). */
  get modelVersion() {
    return this.current.version;
  }

  get manifest() {
    return this.current.manifest;
  }

  /** Where things stand, for pages and tests. */
  status() {
    const { current } = this;
    return {
      model: this.name,
      modelVersion: current.version,
      edge: {
        state: current.edgeState,
        backend: current.runner ? current.runner.backend : null,
        reason: current.edgeError ? current.edgeError.reason : null,
      },
      cloud: this.cloud ? { url: this.cloud.url, health: this.cloud.lastHealth?.status ?? null } : null,
      update: this.updater ? this.updater.last : null,
    };
  }

  /** Resolves once the edge has loaded (or failed to): {state, backend, reason}. */
  async edgeReady() {
    const { current } = this;
    if (current.runner) await current.runner.ready.catch(() => {});
    return this.status().edge;
  }

  async #runEdge(loaded, feeds) {
    if (loaded.edgeError) throw loaded.edgeError;
    try {
      await loaded.runner.ready;
    } catch (error) {
      throw asEdgecloudError(error, CODES.EDGE_UNAVAILABLE);
    }
    const { outputs } = await loaded.runner.run(feeds, this.policy.edgeTimeoutMs);
    return { outputs, backend: loaded.runner.backend };
  }

  async #runCloud(loaded, feeds) {
    if (!this.cloud) throw new EdgecloudError(CODES.CLOUD_UNAVAILABLE, 'no cloud URL is configured');
    const { outputs, modelVersion } = await this.cloud.predict(feeds);
    const dtypes = Object.fromEntries(loaded.manifest.outputs.map((spec) => [spec.name, spec.dtype]));
    for (const [name, tensor] of Object.entries(outputs)) tensor.dtype = dtypes[name] ?? 'float32';
    return { outputs, backend: 'mms/onnxruntime', modelVersion };
  }

  /**
   * Run once: {outputs, ranOn: 'edge'|'cloud', backend, latencyMs, modelVersion, fallbackReason,
   * route, versionMismatch}. modelVersion is the version that computed the answer; versionMismatch
   * says when the cloud answered with another version than the edge runs (else null). Throws EdgecloudError (code bad-input, or no-answer / edge-unavailable when nothing
   * allowed could answer).
   */
  async predict(input, { privacy } = {}) {
    const started = performance.now();
    const loaded = this.current;
    const mode = privacy ?? this.policy.privacy;
    let feeds;
    try {
      feeds = toFeeds(input, loaded.manifest.inputs, { allowNaN: Boolean(loaded.manifest.serving?.allow_nan) });
    } catch (error) {
      throw new EdgecloudError(CODES.BAD_INPUT, error.message);
    }
    const route = decideRoute({
      privacy: mode,
      elements: elementCount(feeds),
      device: { ...deviceCapability(this.environment), ...(this.policy.device ?? {}) },
      edgeState: loaded.edgeState,
      hasCloud: Boolean(this.cloud),
      policy: this.policy,
    });
    const failures = [];
    for (const place of route.order) {
      try {
        const answer = place === 'edge' ? await this.#runEdge(loaded, feeds) : await this.#runCloud(loaded, feeds);
        return {
          outputs: answer.outputs,
          ranOn: place,
          backend: answer.backend,
          latencyMs: performance.now() - started,
          modelVersion: answer.modelVersion ?? loaded.version,
          fallbackReason: failures.length ? failures.map((f) => f.reason).join('; ') : null,
          route: route.reason,
          versionMismatch: versionMismatch(answer.modelVersion, loaded.version),
        };
      } catch (error) {
        const failure = asEdgecloudError(error, place === 'edge' ? CODES.EDGE_ERROR : CODES.CLOUD_ERROR);
        if (failure.code === CODES.BAD_INPUT) throw failure;
        failures.push(failure);
      }
    }
    const detail = failures.map((f) => f.reason).join('; ');
    if (mode === 'local-only') {
      throw new EdgecloudError(
        failures[0].code,
        `local-only: the edge cannot run ${this.name} v${loaded.version} (${detail}); the input was not sent anywhere`,
      );
    }
    throw new EdgecloudError(CODES.NO_ANSWER, `neither the edge nor the cloud answered: ${detail}`);
  }

  /** Stop the background updates and the worker. */
  dispose() {
    if (this.updater) this.updater.stop();
    if (this.current && this.current.runner) this.current.runner.terminate();
  }
}

/** One line when the cloud's answer came from another version than the edge's, else null. */
function versionMismatch(cloudVersion, edgeVersion) {
  if (cloudVersion == null || String(cloudVersion) === String(edgeVersion)) return null;
  return `the cloud answered with version ${cloudVersion}; the edge runs version ${edgeVersion}`;
}
