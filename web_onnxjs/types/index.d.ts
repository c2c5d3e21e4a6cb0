// Types of the public API of onnx-edgecloud-web (src/index.js). Written by hand from the code;
// `make test` keeps them true by type-checking types/check/consumer.ts against them (tsc --noEmit).
// The reference in words is docs/browser-api.md and docs/npm-package.md.

/** A tensor as the API hands it back: flat row-major values and the shape. */
export interface PlainTensor {
  dtype: string;
  shape: number[];
  data: number[];
}

type Numbers = number[] | Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array | BigInt64Array;
type Nested = number | boolean | Nested[];

/** One input: flat values (the free batch dimension is filled in), nested arrays, a typed array or {data, shape}. */
export type TensorInput = Numbers | Nested[] | { data: ArrayLike<number | boolean | bigint>; shape?: number[] };

/** What predict() and personalize() take: one input's values for a one-input model, else keyed by input name. */
export type ModelInput = TensorInput | Record<string, TensorInput>;

export type PrivacyMode = 'auto' | 'prefer-edge' | 'prefer-cloud' | 'local-only';
export const PRIVACY_MODES: readonly PrivacyMode[];

export type OnnxjsBackend = 'wasm' | 'cpu' | 'webgl';

/** What auto weighs about the device; `policy.device` overrides any of it. */
export interface DeviceCapability {
  cores: number;
  memoryGb: number | null;
  online: boolean;
  saveData: boolean;
}

/** A navigator-like object: what the handler reads about the network, the battery and the device. */
export interface EnvironmentLike {
  onLine?: boolean;
  hardwareConcurrency?: number;
  deviceMemory?: number;
  connection?: { saveData?: boolean; effectiveType?: string; downlink?: number };
  getBattery?: () => Promise<{ charging: boolean; level: number }>;
  visibilityState?: string;
  idle?: boolean;
}

export interface Policy {
  privacy: PrivacyMode;
  /** auto: inputs with more numbers than this go to the cloud first. */
  autoEdgeMaxElements: number;
  minCores: number;
  minMemoryGb: number;
  edgeTimeoutMs: number;
  cloudTimeoutMs: number;
  healthTtlMs: number;
  onnxjsBackends: OnnxjsBackend[];
  /** Force one edge runtime: 'onnxjs', 'onnxruntime-web' or 'RUNTIME/BACKEND'; null: the fastest verified. */
  edgeRuntime: string | null;
  /** navigator.connection.downlink below this (Mb/s) is a slow connection. */
  slowDownlinkMbps: number;
  device?: Partial<DeviceCapability>;
  environment?: EnvironmentLike;
}
export const DEFAULT_POLICY: Readonly<Policy>;

/** Where the runtimes and worker scripts are served from (relative URLs are against the page). */
export interface Assets {
  /** Folder of onnx.min.js and onnx-wasm.wasm. Default '/vendor/onnxjs/'. */
  onnxjs: string | URL;
  /** Folder of ort.wasm.min.mjs, ort-wasm-simd-threaded.mjs and .wasm. Default '/vendor/onnxruntime-web/'. */
  onnxruntimeWeb: string | URL;
  /** The bundled or served edge-worker.js; null: next to the package's edge-client.js. */
  edgeWorker: string | URL | null;
  /** The bundled or served train-worker.js; null: next to the package's trainer.js. */
  trainWorker: string | URL | null;
}
export const DEFAULT_ASSETS: Readonly<{ onnxjs: string; onnxruntimeWeb: string; edgeWorker: null; trainWorker: null }>;

/** Forces an update condition met (true) or unmet (false). */
export interface UpdateConditions {
  online?: boolean;
  saveData?: boolean;
  slowConnection?: boolean;
  battery?: boolean;
}

export interface UpdateOptions {
  enabled?: boolean;
  intervalMs?: number;
  environment?: EnvironmentLike;
  conditions?: UpdateConditions;
}

export interface TrainingConditions {
  minBattery?: number;
  respectSaveData?: boolean;
  requireHidden?: boolean;
  requireIdle?: boolean;
  idleMs?: number;
  pollMs?: number;
}

export interface TrainingOptions {
  environment?: EnvironmentLike;
  conditions?: TrainingConditions;
  /** Optimizer steps per message to the training worker (a checkpoint after each chunk). */
  chunkSteps?: number;
}

export interface CreateOptions {
  /** URL of the registry folder (NAME/latest.json, NAME/VERSION/model.json …). Default '/models'. */
  registry?: string;
  model: string;
  /** MMS inference URL; null (the default): edge only. */
  cloud?: string | null;
  policy?: Partial<Policy>;
  update?: UpdateOptions;
  training?: TrainingOptions;
  /**
   * The federated aggregator's URL, or {url, token} with the client token the operator issued (an
   * aggregator started with --client-secret takes only those); null (the default): shareUpdate() is not allowed.
   */
  federated?: string | { url: string; token?: string | null } | null;
  assets?: Partial<Assets>;
}

export type Place = 'edge' | 'cloud';
export type EdgeState = 'loading' | 'ready' | 'unavailable';

export interface PredictResult {
  outputs: Record<string, PlainTensor>;
  ranOn: Place;
  /** 'onnxjs/wasm', 'onnxjs/cpu', 'onnxjs/webgl', 'onnxruntime-web/wasm' or 'mms/onnxruntime'. */
  backend: string;
  /** The runtime that answered: an edge runtime, or the cloud's 'onnxruntime'. */
  runtime: 'onnxjs' | 'onnxruntime-web' | 'onnxruntime';
  /** Why the edge runs that runtime (null from the cloud). */
  runtimeReason: string | null;
  latencyMs: number;
  /** The registry version that computed the answer. */
  modelVersion: string;
  /** True when the edge answered with this person's personalised parameters. */
  personalized: boolean;
  /** null, or "code: message" for each place that failed first, joined by '; '. */
  fallbackReason: string | null;
  /** Why that order was chosen. */
  route: string;
  /** One line when the cloud answered with another version than the edge runs, else null. */
  versionMismatch: string | null;
}

export interface PredictOptions {
  privacy?: PrivacyMode;
}

export interface EdgeStatus {
  state: EdgeState;
  backend: string | null;
  /** The model file the edge runs (the lowered edge file or, for onnxruntime-web, maybe the cloud file). */
  file: string | null;
  runtime: 'onnxjs' | 'onnxruntime-web' | null;
  runtimeReason: string | null;
  reason: string | null;
}

export interface UpdateRecord {
  at: string;
  checked: boolean;
  reason: string;
  version?: string;
}

export type TrainingStateName = 'idle' | 'loading' | 'training' | 'paused';

export interface TrainingProgress {
  state: TrainingStateName;
  reason: string | null;
  step: number;
  steps: number;
  epoch?: number;
  epochs?: number;
  backend?: string;
  loss?: number;
}

export interface HandlerStatus {
  model: string;
  modelVersion: string;
  edge: EdgeStatus;
  cloud: { url: string; health: string | null } | null;
  update: UpdateRecord | null;
  personalization: {
    personalized: boolean;
    baseVersion: string | null;
    training: TrainingProgress;
    note: string | null;
  };
}

/** Examples for personalize(): inputs as predict() takes them, targets per output name (or bare for one output). */
export interface PersonalizeData {
  inputs: ModelInput;
  targets: TensorInput | Record<string, TensorInput>;
}

export interface PersonalizeOptions {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  shuffle?: boolean;
  seed?: number;
  onProgress?: (progress: TrainingProgress) => void;
  signal?: AbortSignal;
}

export interface PersonalizeResult {
  steps: number;
  epochs: number;
  samples: number;
  loss: number[];
  personalized: true;
  resumedFromStep: number;
  backend: string;
}

export interface Parameter {
  shape: number[];
  data: number[];
}

export interface Personalization {
  baseVersion: string;
  steps: number;
  samples: number;
  loss: number[];
  parameters: Record<string, Parameter>;
}

export type ShareUpdateResult =
  | {
      accepted: true; round: number; baseVersion: string; norm: number; clipped: boolean;
      /** Versions the update's base was behind the round's (buffered rounds; else 0), and how much it counts. */
      staleness: number; weight: number;
    }
  | { accepted: false; status: number; code: string | null; message: string };

/** model.json as the handler reads it (docs/model-json.md has every field). */
export interface ModelManifest {
  name: string;
  version: string;
  inputs: { name: string; dtype: string; shape: (number | null)[] }[];
  outputs: { name: string; dtype: string; shape: (number | null)[] }[];
  edge?: { file: string; runtime?: string; backends?: string[]; [key: string]: unknown };
  training?: Record<string, unknown>;
  [key: string]: unknown;
}

export class PredictionHandler {
  /** Resolves once the model's version is chosen and its edge worker is starting (see edgeReady()). */
  static create(options: CreateOptions): Promise<PredictionHandler>;
  /** Throws EdgecloudError: bad-input, no-answer, or the edge's code under local-only. */
  predict(input: ModelInput, options?: PredictOptions): Promise<PredictResult>;
  status(): HandlerStatus;
  edgeReady(): Promise<EdgeStatus>;
  readonly modelVersion: string;
  readonly manifest: ModelManifest;
  readonly updater: { check(): Promise<UpdateRecord> };
  personalize(data: PersonalizeData, options?: PersonalizeOptions): Promise<PersonalizeResult>;
  personalization(): Personalization | null;
  baseParameters(): Promise<Record<string, Parameter>>;
  resetPersonalization(): Promise<{ personalized: false; modelVersion: string }>;
  shareUpdate(options?: { signal?: AbortSignal }): Promise<ShareUpdateResult>;
  dispose(): void;
}

export type ErrorCode =
  | 'bad-input'
  | 'bad-model'
  | 'edge-unavailable'
  | 'edge-integrity'
  | 'edge-error'
  | 'edge-shape'
  | 'edge-timeout'
  | 'cloud-unavailable'
  | 'cloud-unreachable'
  | 'cloud-timeout'
  | 'cloud-unhealthy'
  | 'cloud-model-missing'
  | 'cloud-busy'
  | 'cloud-error'
  | 'no-answer'
  | 'not-allowed'
  | 'training-error'
  | 'training-aborted'
  | 'training-busy';

export const CODES: Readonly<{
  BAD_INPUT: 'bad-input';
  BAD_MODEL: 'bad-model';
  EDGE_UNAVAILABLE: 'edge-unavailable';
  EDGE_INTEGRITY: 'edge-integrity';
  EDGE_ERROR: 'edge-error';
  EDGE_SHAPE: 'edge-shape';
  EDGE_TIMEOUT: 'edge-timeout';
  CLOUD_UNAVAILABLE: 'cloud-unavailable';
  CLOUD_UNREACHABLE: 'cloud-unreachable';
  CLOUD_TIMEOUT: 'cloud-timeout';
  CLOUD_UNHEALTHY: 'cloud-unhealthy';
  CLOUD_MODEL_MISSING: 'cloud-model-missing';
  CLOUD_BUSY: 'cloud-busy';
  CLOUD_ERROR: 'cloud-error';
  NO_ANSWER: 'no-answer';
  NOT_ALLOWED: 'not-allowed';
  TRAINING_ERROR: 'training-error';
  TRAINING_ABORTED: 'training-aborted';
  TRAINING_BUSY: 'training-busy';
}>;

export class EdgecloudError extends Error {
  constructor(code: ErrorCode, message: string);
  readonly name: 'EdgecloudError';
  readonly code: ErrorCode;
  /** "code: message", the form used in fallbackReason. */
  readonly reason: string;
}
