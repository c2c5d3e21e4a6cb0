// A page written in TypeScript against the package, as a consumer writes it: `make test` type-checks
// it (tsc --noEmit -p types/check). Each @ts-expect-error is a mistake the types must catch.
import {
  CODES,
  DEFAULT_ASSETS,
  DEFAULT_POLICY,
  EdgecloudError,
  PRIVACY_MODES,
  PredictionHandler,
  type ErrorCode,
  type PredictResult,
  type PrivacyMode,
} from 'onnx-edgecloud-web';

export async function page(window250: Float32Array): Promise<string> {
  const handler = await PredictionHandler.create({
    registry: '/models',
    model: 'forecaster',
    cloud: 'http://127.0.0.1:8080',
    policy: { privacy: 'auto', edgeTimeoutMs: 5000, onnxjsBackends: ['wasm', 'cpu'], edgeRuntime: 'onnxruntime-web/wasm' },
    update: { enabled: false },
    training: { conditions: { minBattery: 0.2 }, chunkSteps: 4 },
    federated: null,
    assets: {
      onnxjs: '/runtimes/onnxjs/',
      onnxruntimeWeb: new URL('/runtimes/onnxruntime-web/', 'http://127.0.0.1'),
      edgeWorker: '/app/edge-worker.js',
      trainWorker: '/app/train-worker.js',
    },
  });
  const edge = await handler.edgeReady();
  const ready: boolean = edge.state === 'ready';

  let result: PredictResult;
  try {
    result = await handler.predict(window250, { privacy: 'prefer-edge' });
  } catch (error) {
    if (error instanceof EdgecloudError && error.code === CODES.BAD_INPUT) return error.reason;
    throw error;
  }
  const forecast: number[] = result.outputs.forecast.data;
  const where: 'edge' | 'cloud' = result.ranOn;
  const runtime: string = `${result.runtime}: ${result.runtimeReason ?? 'cloud'}`;
  const why: string | null = result.fallbackReason;
  await handler.predict({ window: { data: [...window250], shape: [1, 250, 1] } });
  await handler.predict([[0.1], [0.2]]);

  const trained = await handler.personalize(
    { inputs: { data: window250, shape: [1, 250, 1] }, targets: [[1, 2, 3]] },
    { epochs: 2, batchSize: 8, learningRate: 0.01, onProgress: (p) => console.log(p.state, p.step, p.steps) },
  );
  const losses: number[] = trained.loss;
  const mine = handler.personalization();
  const firstParameter = mine ? Object.values(mine.parameters)[0].shape : [];
  const shared = await handler.shareUpdate();
  const round = shared.accepted ? shared.round : shared.message;
  await handler.resetPersonalization();

  const status = handler.status();
  const health = status.cloud?.health ?? 'edge only';
  const checked = (await handler.updater.check()).checked;
  const modes: readonly PrivacyMode[] = PRIVACY_MODES;
  const code: ErrorCode = CODES.NO_ANSWER;
  const timeout: number = DEFAULT_POLICY.edgeTimeoutMs;
  const folder: string = DEFAULT_ASSETS.onnxjs;
  handler.dispose();

  // @ts-expect-error: the model name is required
  await PredictionHandler.create({ registry: '/models' });
  // @ts-expect-error: not a privacy mode
  await handler.predict(window250, { privacy: 'sometimes' });
  // @ts-expect-error: not an asset the handler loads
  await PredictionHandler.create({ model: 'm', assets: { uplot: '/x/' } });
  // @ts-expect-error: not an ONNX.js backend
  await PredictionHandler.create({ model: 'm', policy: { onnxjsBackends: ['webgpu'] } });
  // @ts-expect-error: ranOn is 'edge' or 'cloud'
  if (result.ranOn === 'server') return 'never';
  // @ts-expect-error: not an error code
  if (code === 'edge-crashed') return 'never';
  // @ts-expect-error: a string is not an input
  await handler.predict('0.1, 0.2');

  return [ready, forecast.length, where, runtime, why, losses.length, firstParameter, round, health, checked, modes, timeout, folder].join();
}
