// The Prediction Handler: one model, two places. Per request it picks the edge (this browser,
// in a Web Worker) or the cloud (Multi Model Server), falls back to the other when one fails,
// and says where the answer came from and why.
//
//   const handler = await PredictionHandler.create({ registry: '/models', model: 'forecaster',
//                                                    cloud: 'http://127.0.0.1:8080', policy: {} });
//   const { outputs, ranOn, backend, runtime, runtimeReason, latencyMs, modelVersion, fallbackReason } =
//     await handler.predict(window, { privacy: 'auto' });
//   await handler.personalize({ inputs, targets }, { epochs: 2 });   // trains in a worker, on this device
//   handler.personalization();  await handler.resetPersonalization();

import { resolveAssets } from './assets.js';
import { CloudEndpoint } from './cloud.js';
import { shareUpdate } from './federated.js';
import { EdgeRunner } from './edge-client.js';
import { CODES, EdgecloudError, asEdgecloudError } from './errors.js';
import { elementCount, pinnedShapeProblem, toFeeds } from './feeds.js';
import { ModelStore } from './model-store.js';
import { parameterFile, readParameters, writeParameters } from './parameters.js';
import { Personalizer } from './personalizer.js';
import { DEFAULT_POLICY, decideRoute, deviceCapability, parseEdgeRuntime, planEdgeRuntime, runtimesToProbe } from './policy.js';
import { cachedRuntimes, noteRuntimeLoaded } from './runtime-cache.js';
import { TrainingStore } from './training-store.js';
import { BackgroundUpdater } from './updater.js';

/**
 * The plan's candidates on files that hold every trainable parameter; when none does (the lowering
 * rewrote a trained tensor in the edge file, as when it unrolls an LSTM or a Loop), onnxruntime-web
 * on the file that holds them (the cloud file, which it runs as exported).
 */
function personalizedPlan(plan, training) {
  const holdsAll = (file) => training.parameters.every((parameter) => parameter.locations?.[file]);
  const candidates = plan.candidates.filter((candidate) => holdsAll(candidate.file));
  if (candidates.length) return { ...plan, candidates };
  const file = parameterFile(training, plan.candidates[0]?.file);
  return { candidates: [{ runtime: 'onnxruntime-web', backend: 'wasm', file }], reason: `personalised: ${file} holds the trained parameters` };
}

const RETIRE_GRACE_MS = 1000; // a replaced runner lives this long, so a request already on it finishes

/** One loaded version: its manifest and its edge runner (or why the edge cannot run it). */
class LoadedVersion {
  constructor(version, manifest) {
    this.version = version;
    this.manifest = manifest;
    this.runner = null;
    this.plan = null; // {candidates: [{runtime, backend}], reason} (policy.js planEdgeRuntime)
    this.edgeError = null; // EdgecloudError when the edge cannot run this version
    this.personalized = null; // the personalisation record its edge runner carries, or null
  }

  get edgeState() {
    if (this.edgeError) return 'unavailable';
    return this.runner && this.runner.backend ? 'ready' : 'loading';
  }

  /** {runtime, runtimeReason}: the edge runtime that loaded (null until one did) and why it was chosen. */
  get runtimeChoice() {
    const backend = this.runner && this.runner.backend;
    if (!backend) return { runtime: null, runtimeReason: this.plan ? this.plan.reason : null };
    const skipped = this.runner.attempts.map((a) => `${a.backend} could not load here (${a.error})`);
    return { runtime: backend.split('/')[0], runtimeReason: [this.plan.reason, ...skipped].join('; ') };
  }
}

export class PredictionHandler {
  /**
   * registry: URL of the registry folder ('/models'); model: its name; cloud: MMS inference URL
   * (optional); policy: see DEFAULT_POLICY; update: {enabled, intervalMs, environment, conditions};
   * training: {environment, conditions (see train-conditions.js), chunkSteps} for personalize();
   * federated: the aggregator's URL (`/config.json` `federated`) if the page allows shareUpdate(), or
   *   {url, token} when the aggregator takes only updates with a client token (docs/federated.md);
   * assets: where the runtimes and worker scripts are served (assets.js; default: edgecloud serve's /vendor/).
   */
  static async create({ registry = '/models', model, cloud = null, policy = {}, update = {}, training = {}, federated = null, assets = {} } = {}) {
    if (!model || typeof model !== 'string') throw new Error('PredictionHandler.create needs {model: "NAME"}');
    const handler = new PredictionHandler({ registry, model, cloud, policy, update, training, federated, assets });
    await handler.#start();
    return handler;
  }

  constructor({ registry, model, cloud, policy, update, training = {}, federated = null, assets = {} }) {
    this.name = model;
    this.assets = resolveAssets(assets);
    const sharing = federated !== null && typeof federated === 'object' ? federated : { url: federated };
    this.federatedUrl = sharing.url ?? null;
    this.federatedToken = sharing.token ?? null;
    this.policy = { ...DEFAULT_POLICY, ...policy };
    if (this.policy.edgeRuntime != null) parseEdgeRuntime(this.policy.edgeRuntime); // bad-input before anything loads
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
    this.trainingStore = new TrainingStore(model);
    this.personalizer = new Personalizer({
      store: this.store,
      trainingStore: this.trainingStore,
      policy: this.policy,
      assets: this.assets,
      environment: training.environment ?? this.environment,
      conditions: training.conditions,
      chunkSteps: training.chunkSteps,
    });
    this.training = null; // {promise, stop: AbortController} of the personalisation running now
    this.personalizationNote = null; // why a personalisation is not in use (dropped on a new version)
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
      if (remembered === null || error.code === CODES.BAD_INPUT) throw error;
      this.current = await this.#open(await latest()); // the remembered version is gone everywhere
    }
    if (this.current.edgeState !== 'unavailable') await this.store.setCurrent(this.current.version);
    await this.#dropStalePersonalizations(this.current.version);
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

  /** What auto routing and the runtime choice weigh: navigator's values, overridden by policy.device. */
  #device() {
    return { ...deviceCapability(this.environment), ...(this.policy.device ?? {}) };
  }

  /** planEdgeRuntime's answer; on a slow network it first asks the HTTP cache about the bigger runtimes. */
  async #plan(manifest) {
    const choice = { manifest, policy: this.policy, device: this.#device() };
    const probe = runtimesToProbe(choice);
    return planEdgeRuntime({ ...choice, cached: probe.length ? await cachedRuntimes(probe, this.assets) : {} });
  }

  /**
   * Manifest + verified edge file + a worker loading it. Edge trouble is recorded, not thrown; a
   * policy.edgeRuntime this version has not verified is (bad-input).
   */
  async #open(version) {
    let manifest;
    try {
      manifest = await this.store.manifest(version);
    } catch (error) {
      if (error instanceof EdgecloudError) throw error; // bad-model: the message names the field
      throw new Error(`cannot load model.json of ${this.name} v${version}: ${error.message}`);
    }
    const loaded = new LoadedVersion(version, manifest);
    try {
      loaded.plan = await this.#plan(loaded.manifest);
      // The first file to run is fetched now: one that fails its SHA-256 is edge-integrity before any worker starts.
      await this.store.verifiedFile(version, manifest, loaded.plan.candidates[0]?.file ?? manifest.edge.file);
      const record = await this.#storedPersonalization(loaded);
      if (record) {
        try {
          const edgeBytes = await this.store.verifiedFile(version, manifest, manifest.edge.file);
          writeParameters(edgeBytes, manifest.training, manifest.edge.file, record.parameters);
          loaded.personalized = record;
        } catch (error) {
          this.personalizationNote = `the saved personalisation of v${version} no longer fits its edge file: ${error.message}`;
        }
      }
      loaded.runner = this.#runner(loaded, loaded.personalized);
      loaded.runner.load().then(
        (backend) => noteRuntimeLoaded(backend.split('/')[0]),
        (error) => {
          loaded.edgeError = asEdgecloudError(error, CODES.EDGE_UNAVAILABLE);
        },
      );
    } catch (error) {
      if (error instanceof EdgecloudError && error.code === CODES.BAD_INPUT) throw error;
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
    await this.#dropStalePersonalizations(version);
    return true;
  }

  /** The personalisation saved for this version (if the edge file still takes it), else null. */
  async #storedPersonalization(loaded) {
    if (!loaded.manifest.training) return null;
    try {
      return (await this.trainingStore.personalization(loaded.version)) ?? null;
    } catch (error) {
      this.personalizationNote = `the saved personalisation could not be read: ${error.message}`;
      return null;
    }
  }

  /**
   * A personalisation belongs to its base version: on another version it is dropped (the handler
   * never kept the data to re-run it), and status()/personalization() say so.
   */
  async #dropStalePersonalizations(version) {
    let dropped = [];
    try {
      dropped = await this.trainingStore.dropExcept([version]);
    } catch {
      return; // no IndexedDB (private mode): nothing was kept either
    }
    if (dropped.length) {
      this.personalizationNote =
        `the personalisation of v${dropped.join(', v')} was dropped when v${version} was adopted ` +
        '(it was trained on another base); personalize again to personalise this version';
    }
  }

  /**
   * An edge runner for `loaded` whose files are the verified ones, with `record`'s personalised
   * parameters written in when given (a file without their locations fails, and the next candidate
   * is tried). Bytes are kept per file, so a restart after a timeout fetches nothing again.
   */
  #runner(loaded, record) {
    const { version, manifest } = loaded;
    const files = new Map();
    const modelFor = (file) => {
      if (!files.has(file)) {
        const bytes = this.store.verifiedFile(version, manifest, file);
        files.set(file, record ? bytes.then((base) => writeParameters(base, manifest.training, file, record.parameters)) : bytes);
      }
      return files.get(file);
    };
    const plan = record ? personalizedPlan(loaded.plan, manifest.training) : loaded.plan;
    return new EdgeRunner({ plan, inputs: manifest.inputs, modelFor, assets: this.assets });
  }

  /** A new edge runner for `loaded` (personalised with `record`, or the shared model); switch to it only once it loads. */
  async #switchRunner(loaded, record) {
    const runner = this.#runner(loaded, record);
    try {
      await runner.load();
    } catch (error) {
      runner.terminate();
      throw new EdgecloudError(CODES.TRAINING_ERROR, `the ${record ? 'personalised' : 'shared'} model did not load: ${error.message}`);
    }
    const previous = loaded.runner;
    loaded.runner = runner;
    loaded.edgeError = null;
    loaded.personalized = record;
    if (previous) setTimeout(() => previous.terminate(), RETIRE_GRACE_MS);
  }

  /**
   * Fine-tune the trainable parameters on this person's examples, in the training worker, on this
   * device; nothing is sent anywhere. {inputs, targets}: inputs as predict() takes them, targets
   * per output name (or a bare array for one output). Options: {epochs, batchSize, learningRate,
   * shuffle, seed, onProgress, signal}. Resolves {steps, epochs, samples, loss, personalized}.
   */
  async personalize(data, options = {}) {
    if (this.training) throw new EdgecloudError(CODES.TRAINING_BUSY, 'a personalisation is already running');
    const loaded = this.current;
    let job;
    try {
      job = await this.personalizer.prepare(loaded.version, loaded.manifest, data, options ?? {});
    } catch (error) {
      if (error instanceof EdgecloudError && error.code !== CODES.BAD_INPUT) throw error;
      throw new EdgecloudError(CODES.BAD_INPUT, error.message);
    }
    const stop = new AbortController();
    const promise = (async () => {
      const result = await this.personalizer.run(job, stop.signal);
      if (this.current !== loaded) {
        throw new EdgecloudError(CODES.TRAINING_ABORTED, `v${this.current.version} was adopted while personalising v${loaded.version}: personalise again`);
      }
      const record = {
        baseVersion: loaded.version, steps: result.steps, epochs: result.epochs, samples: result.samples,
        loss: result.losses, parameters: result.params, backend: result.backend, at: new Date().toISOString(),
      };
      await this.#switchRunner(loaded, record);
      await this.trainingStore.savePersonalization(loaded.version, record);
      await this.trainingStore.dropCheckpoint(loaded.version, result.fingerprint);
      this.personalizationNote = null;
      return { steps: result.steps, epochs: result.epochs, samples: result.samples, loss: [...result.losses],
               personalized: true, resumedFromStep: result.resumedFrom, backend: result.backend }; // fmt: skip
    })();
    this.training = { promise, stop };
    try {
      return await promise;
    } finally {
      this.training = null;
    }
  }

  /** The personalisation in use: {baseVersion, steps, samples, loss, parameters: {NAME: {shape, data}}}, or null. */
  personalization() {
    const { current } = this;
    const record = current.personalized;
    if (!record) return null;
    const parameters = Object.fromEntries(
      current.manifest.training.parameters.map((p) => [p.name, { shape: [...p.shape], data: Array.from(record.parameters[p.name]) }]),
    );
    return { baseVersion: record.baseVersion, steps: record.steps, samples: record.samples, loss: [...record.loss], parameters };
  }

  /** The shared model's trainable parameters (from the verified edge file), named as in personalization(). */
  async baseParameters() {
    const { current } = this;
    const file = parameterFile(current.manifest.training, current.manifest.edge.file);
    const bytes = await this.store.verifiedFile(current.version, current.manifest, file);
    const values = readParameters(bytes, current.manifest.training, file);
    return Object.fromEntries(current.manifest.training.parameters.map((p) => [p.name, { shape: [...p.shape], data: Array.from(values[p.name]) }]));
  }

  /**
   * Opt-in: send the personalisation's parameter delta against its base version, its sample count and
   * this browser's random client id to the aggregator (never the examples; never with local-only).
   * Resolves {accepted, round, baseVersion, ...} or {accepted: false, status, code, message}.
   */
  async shareUpdate({ signal } = {}) {
    const personalization = this.personalization();
    const base = personalization ? await this.baseParameters() : null;
    return shareUpdate({ url: this.federatedUrl, token: this.federatedToken, model: this.name, privacy: this.policy.privacy,
      personalization, base, signal });
  }

  /** Back to the shared model: stops a running personalisation, forgets checkpoints and results. */
  async resetPersonalization() {
    if (this.training) {
      this.training.stop.abort(new Error('resetPersonalization() was called'));
      await this.training.promise.catch(() => {});
    }
    await this.trainingStore.dropExcept([]);
    this.personalizationNote = null;
    const loaded = this.current;
    if (loaded.personalized) await this.#switchRunner(loaded, null);
    return { personalized: false, modelVersion: loaded.version };
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
        file: current.runner ? current.runner.file : null,
        ...current.runtimeChoice,
        reason: current.edgeError ? current.edgeError.reason : null,
      },
      cloud: this.cloud ? { url: this.cloud.url, health: this.cloud.lastHealth?.status ?? null } : null,
      update: this.updater ? this.updater.last : null,
      personalization: {
        personalized: Boolean(current.personalized),
        baseVersion: current.personalized ? current.personalized.baseVersion : null,
        training: { ...this.personalizer.state },
        note: this.personalizationNote,
      },
    };
  }

  /** Resolves once the edge has loaded (or failed to): {state, backend, runtime, runtimeReason, reason}. */
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
    const { runner, personalized } = loaded;
    const pinned = runner.file === loaded.manifest.edge.file ? pinnedShapeProblem(feeds, loaded.manifest.edge.inputs) : null;
    if (pinned) throw new EdgecloudError(CODES.EDGE_SHAPE, pinned);
    const { outputs } = await runner.run(feeds, this.policy.edgeTimeoutMs);
    return { outputs, backend: runner.backend, personalized: Boolean(personalized), ...loaded.runtimeChoice };
  }

  async #runCloud(loaded, feeds) {
    if (!this.cloud) throw new EdgecloudError(CODES.CLOUD_UNAVAILABLE, 'no cloud URL is configured');
    const { outputs, modelVersion } = await this.cloud.predict(feeds, loaded.version); // the version the edge runs
    const dtypes = Object.fromEntries(loaded.manifest.outputs.map((spec) => [spec.name, spec.dtype]));
    for (const [name, tensor] of Object.entries(outputs)) tensor.dtype = dtypes[name] ?? 'float32';
    return { outputs, backend: 'mms/onnxruntime', runtime: 'onnxruntime', runtimeReason: null, modelVersion };
  }

  /**
   * Run once: {outputs, ranOn: 'edge'|'cloud', backend, runtime, runtimeReason, latencyMs, modelVersion,
   * fallbackReason, route, versionMismatch}. runtime is the edge runtime ('onnxjs', 'onnxruntime-web')
   * or the cloud's ('onnxruntime'); runtimeReason says why the edge runs that one (null from the cloud). modelVersion is the version that computed the answer; versionMismatch
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
      device: this.#device(),
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
          runtime: answer.runtime,
          runtimeReason: answer.runtimeReason,
          latencyMs: performance.now() - started,
          modelVersion: answer.modelVersion ?? loaded.version,
          personalized: place === 'edge' && Boolean(answer.personalized),
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

  /** Stop the background updates, a running personalisation (its checkpoint stays) and the workers. */
  dispose() {
    if (this.updater) this.updater.stop();
    if (this.training) this.training.stop.abort(new Error('the handler was disposed'));
    if (this.current && this.current.runner) this.current.runner.terminate();
  }
}

/** One line when the cloud's answer came from another version than the edge's, else null. */
function versionMismatch(cloudVersion, edgeVersion) {
  if (cloudVersion == null || String(cloudVersion) === String(edgeVersion)) return null;
  return `the cloud answered with version ${cloudVersion}; the edge runs version ${edgeVersion}`;
}
