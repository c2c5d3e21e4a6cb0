// The package's entry point (`import { PredictionHandler } from 'onnx-edgecloud-web'`): the public
// API and nothing else. Types: ../types/index.d.ts. The worker scripts are entries of their own
// (`onnx-edgecloud-web/edge-worker.js`, `…/train-worker.js`) for bundlers that need to be told.

export { DEFAULT_ASSETS } from './assets.js';
export { CODES, EdgecloudError } from './errors.js';
export { DEFAULT_POLICY, PRIVACY_MODES } from './policy.js';
export { PredictionHandler } from './prediction-handler.js';
