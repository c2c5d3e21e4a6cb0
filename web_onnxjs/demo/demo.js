// The demo page: an ECG-like signal slides past; each window goes through the Prediction Handler
// with the chosen privacy mode, and the edge's and the cloud's forecasts are drawn side by side.
// Shapes come from model.json (window → forecast, 2-D [?, T] or 3-D [?, T, 1]), never hard-coded.
// The signal is the recording /config.json names for the model (`signals`, e.g. the ECG strip
// `edgecloud demo` writes), else a built-in pulse train. `?edgeRuntime=onnxjs` (or any value
// policy.edgeRuntime takes) forces the edge runtime; by default the handler runs the fastest verified.

import { fetchJson } from '../src/registry.js';
import { PredictionHandler } from '../src/prediction-handler.js';
import { maxAbsDiff } from '../src/tensors.js';

const $ = (id) => document.getElementById(id);
const status = $('status');
const PULSE_LENGTH = 6000;

/** The same pulse train as tests/web/registry_models.py: a sharp peak and a wider wave per beat, plus noise. */
function pulseSignal(length, period = 50, noise = 0.02, seed = 1) {
  let state = seed;
  const uniform = () => {
    state = (state * 1664525 + 1013904223) % 4294967296;
    return state / 4294967296;
  };
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return Array.from({ length }, (_, t) => {
    const phase = (t % period) / period;
    const peak = Math.exp(-(((phase - 0.3) / 0.02) ** 2));
    const wave = 0.3 * Math.exp(-(((phase - 0.6) / 0.08) ** 2));
    return peak + wave + noise * gaussian();
  });
}

const product = (dims) => dims.reduce((a, b) => a * b, 1);

class Demo {
  constructor(handler, signal, uPlot) {
    this.handler = handler;
    this.uPlot = uPlot;
    this.signal = signal;
    const input = handler.manifest.inputs[0];
    this.inputName = input.name;
    this.inputDims = input.shape.slice(1).map((d) => d ?? 64); // [T] or [T, 1]
    this.windowLength = product(this.inputDims);
    this.horizon = product(handler.manifest.outputs[0].shape.slice(1).map((d) => d ?? 1));
    this.position = this.windowLength;
    this.chart = null;
    this.busy = false;
    this.started = false;
  }

  privacy() {
    return document.querySelector('input[name="privacy"]:checked').value;
  }

  input() {
    const data = this.signal.slice(this.position - this.windowLength, this.position);
    return { [this.inputName]: { data, shape: [1, ...this.inputDims] } };
  }

  /**
   * One step: the answer under the chosen mode, which also fills its own side of the comparison;
   * only the other side is asked for separately. `advance: false` predicts the same window again
   * (after the privacy switch changed).
   */
  async step({ advance = true } = {}) {
    if (this.busy) return;
    this.busy = true;
    if (advance && this.started) this.position = Math.min(this.position + this.horizon, this.signal.length - this.horizon);
    this.started = true;
    try {
      const privacy = this.privacy();
      const input = this.input();
      const answer = await this.handler.predict(input, { privacy });
      this.showAnswer(answer);
      const edge = answer.ranOn === 'edge'
        ? answer
        : await this.handler.predict(input, { privacy: 'local-only' }).catch((e) => ({ error: e.message }));
      let cloud;
      if (privacy === 'local-only') cloud = { skipped: 'not sent: privacy is local-only' };
      else if (answer.ranOn === 'cloud') cloud = answer;
      else cloud = await this.cloudOnly(input);
      this.showSides(edge, cloud);
      this.draw(edge, cloud);
      status.textContent = `Window ending at sample ${this.position}: answered on the ${answer.ranOn} in ${answer.latencyMs.toFixed(1)} ms.`;
      status.className = '';
    } catch (error) {
      status.textContent = `No answer: ${error.message}`;
      status.className = 'error';
      this.clearAnswer();
    } finally {
      this.busy = false;
    }
  }

  /** The cloud's own answer; a prefer-cloud request that fell back to the edge is no cloud answer. */
  async cloudOnly(input) {
    try {
      const result = await this.handler.predict(input, { privacy: 'prefer-cloud' });
      return result.ranOn === 'cloud' ? result : { error: `cloud did not answer (${result.fallbackReason})` };
    } catch (error) {
      return { error: error.message };
    }
  }

  showAnswer(answer) {
    $('ran-on').textContent = answer.ranOn;
    $('ran-on').className = answer.ranOn;
    $('backend').textContent = answer.backend;
    $('runtime-reason').textContent = this.handler.status().edge.runtimeReason ?? '—';
    $('latency').textContent = answer.latencyMs.toFixed(2);
    $('answer-version').textContent = answer.modelVersion;
    $('route').textContent = answer.route;
    $('fallback').textContent = answer.fallbackReason ?? 'none';
    $('fallback').className = answer.fallbackReason ? 'warn' : '';
    $('model-version').textContent = answer.modelVersion;
  }

  clearAnswer() {
    for (const id of ['ran-on', 'backend', 'runtime-reason', 'latency', 'answer-version', 'route', 'fallback']) $(id).textContent = '—';
  }

  showSides(edge, cloud) {
    const cell = (side, field) => document.querySelector(`td[data-side="${side}"][data-field="${field}"]`);
    for (const [side, result] of [['edge', edge], ['cloud', cloud]]) {
      const problem = result.error ?? result.skipped;
      cell(side, 'where').textContent = problem ?? `${result.ranOn} · ${result.backend}`;
      cell(side, 'where').className = problem ? 'warn' : result.ranOn;
      cell(side, 'latency').textContent = problem ? '—' : result.latencyMs.toFixed(2);
      cell(side, 'values').textContent = problem
        ? '—'
        : Object.values(result.outputs)[0].data.slice(0, 4).map((v) => Number(v).toFixed(4)).join(', ');
    }
    const both = edge.outputs && cloud.outputs;
    const diff = both ? maxAbsDiff(edge.outputs, cloud.outputs) : null;
    $('diff').textContent = diff === null ? '—' : diff.toExponential(2);
    // A personalised edge differs from the cloud's shared model by design, not by a fault.
    const personal = Boolean(edge.outputs && edge.personalized && cloud.outputs);
    $('diff').className = diff === null || personal ? '' : diff <= 1e-4 ? 'ok' : 'bad';
    $('diff-note').textContent = personal ? '(the edge runs this person\'s personalised model; the cloud serves the shared one)' : '';
  }

  draw(edge, cloud) {
    const n = this.windowLength;
    const h = this.horizon;
    const start = this.position - n;
    const xs = Array.from({ length: n + h }, (_, i) => start + i);
    const truth = this.signal.slice(start, this.position + h);
    const forecast = (result) => [...Array(n - 1).fill(null), truth[n - 1],
      ...(result.outputs ? Object.values(result.outputs)[0].data.slice(0, h).map(Number) : Array(h).fill(null))];
    const data = [xs, truth, forecast(edge), forecast(cloud)];
    if (this.chart) {
      this.chart.setData(data);
      return;
    }
    const series = [
      {},
      { label: 'signal', stroke: '#4a5468', width: 1.5 },
      { label: 'edge forecast', stroke: '#176b2c', width: 2.5 },
      { label: 'cloud forecast', stroke: '#1f5fbf', width: 2, dash: [6, 4] },
    ];
    const width = Math.min(880, document.querySelector('main').clientWidth);
    this.chart = new this.uPlot({ width, height: 300, series, scales: { x: { time: false } } }, data, $('chart'));
  }
}

const TRAIN_SECONDS = 30; // docs/training.md "Does it help?": the first 30 s train, the rest scores
const STRIDE = 5;
const SCORE_WINDOWS = 200; // enough later windows for a stable MAE, few enough to predict quickly

/** The person's windows from sample `from` to `to` (stride 5): {inputs, targets} as personalize() takes them. */
function personalWindows(demo, from, to) {
  const rows = [];
  for (let end = from + demo.windowLength; end + demo.horizon <= to; end += STRIDE) rows.push(end);
  const data = rows.flatMap((end) => demo.signal.slice(end - demo.windowLength, end));
  const targets = rows.map((end) => demo.signal.slice(end, end + demo.horizon));
  return { inputs: { [demo.inputName]: { data, shape: [rows.length, ...demo.inputDims] } }, targets, rows };
}

/**
 * The edge model's forecasts on the scoring windows (local-only: the data never leaves) and their
 * mean absolute error: {mae, forecasts: Map(window end → forecast)}.
 */
async function edgeScore(demo, rows) {
  let total = 0;
  let count = 0;
  const forecasts = new Map();
  for (const end of rows) {
    const data = demo.signal.slice(end - demo.windowLength, end);
    const answer = await demo.handler.predict({ [demo.inputName]: { data, shape: [1, ...demo.inputDims] } }, { privacy: 'local-only' });
    const forecast = Array.from(Object.values(answer.outputs)[0].data.slice(0, demo.horizon), Number);
    for (let i = 0; i < demo.horizon; i += 1) total += Math.abs(forecast[i] - demo.signal[end + i]);
    count += demo.horizon;
    forecasts.set(end, forecast);
  }
  return { mae: total / count, forecasts };
}

/**
 * The later data with the shared model's and the personalised forecasts laid end to end (one
 * scoring window per horizon, so each sample has one forecast of each), on its own uPlot chart;
 * `after` null draws the shared model alone (before training, after a reset).
 */
class PersonalChart {
  constructor(demo, rows) {
    this.demo = demo;
    this.tiles = rows.filter((end) => (end - rows[0]) % demo.horizon === 0);
    const first = this.tiles[0];
    this.xs = Array.from({ length: this.tiles.length * demo.horizon }, (_, i) => first + i);
    this.chart = null;
  }

  series(forecasts) {
    if (!forecasts) return this.xs.map(() => null);
    return this.tiles.flatMap((end) => forecasts.get(end));
  }

  draw(before, after) {
    const truth = this.xs.map((x) => this.demo.signal[x]);
    const data = [this.xs, truth, this.series(before.forecasts), this.series(after?.forecasts)];
    const label = (name, score) => (score ? `${name} (MAE ${score.mae.toFixed(4)})` : name);
    const series = [
      {},
      { label: "this person's later data", stroke: '#4a5468', width: 1.5 },
      { label: label('shared model', before), stroke: '#b0541c', width: 2, dash: [6, 4] },
      { label: label('personalised', after), stroke: '#176b2c', width: 2.5 },
    ];
    this.chart?.destroy();
    const width = Math.min(880, document.querySelector('main').clientWidth);
    this.chart = new this.demo.uPlot({ width, height: 260, series, scales: { x: { time: false } } }, data, $('personal-chart'));
    window.personalChart = { labels: series.slice(1).map((s) => s.label), data };
  }
}

/** The "Personalise" action: train on the first 30 s (or half of a signal without a rate), score on the rest. */
function wirePersonalisation(demo, samplingRate) {
  const button = $('personalise');
  const reset = $('reset-personal');
  const note = $('personal-status');
  const training = demo.handler.manifest.training;
  if (!training) {
    button.disabled = true;
    note.textContent = 'This model has no training step (no "training" entry in model.json): it cannot be personalised.';
    return;
  }
  const split = samplingRate ? Math.round(TRAIN_SECONDS * samplingRate) : Math.floor(demo.signal.length / 2);
  const scoreRows = personalWindows(demo, split, demo.signal.length).rows.slice(0, SCORE_WINDOWS);
  const chart = new PersonalChart(demo, scoreRows);
  let before = null;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const examples = personalWindows(demo, 0, split);
      note.textContent = 'scoring the shared model…';
      before = await edgeScore(demo, scoreRows);
      $('mae-before').textContent = before.mae.toFixed(4);
      chart.draw(before, null);
      note.textContent = `training on ${examples.rows.length} windows…`;
      const result = await demo.handler.personalize(
        { inputs: examples.inputs, targets: examples.targets },
        { epochs: 3, learningRate: 0.003, batchSize: Math.min(32, training.batch_size),
          onProgress: (p) => { if (p.steps) $('personal-progress').value = p.step / p.steps; } },
      );
      $('personal-progress').value = 1;
      const after = await edgeScore(demo, scoreRows);
      $('mae-after').textContent = after.mae.toFixed(4);
      chart.draw(before, after);
      note.textContent = `personalised: ${result.steps} steps on ${result.samples} windows (${result.backend})`;
      reset.disabled = false;
      document.body.dataset.personal = 'done';
      await demo.step({ advance: false });
    } catch (error) {
      note.textContent = `Personalisation failed: ${error.message}`;
      document.body.dataset.personal = 'error';
      button.disabled = false;
    }
  });
  reset.addEventListener('click', async () => {
    reset.disabled = true;
    await demo.handler.resetPersonalization();
    $('mae-after').textContent = '—';
    if (before) chart.draw(before, null);
    $('personal-progress').value = 0;
    note.textContent = 'back on the shared model';
    button.disabled = false;
    document.body.dataset.personal = 'reset';
    await demo.step({ advance: false });
  });
}

/** MMS's URL: as /config.json gives it, or (server on every address) this page's host on MMS's port. */
function cloudUrl(config) {
  if (config.cloud) return config.cloud;
  return config.cloudPort ? `${location.protocol}//${location.hostname}:${config.cloudPort}` : null;
}

/** Policy options the page's URL sets: `?edgeRuntime=RUNTIME[/BACKEND]` forces the edge runtime. */
function pagePolicy() {
  const forced = new URLSearchParams(location.search).get('edgeRuntime');
  return forced ? { edgeRuntime: forced } : {};
}

async function main() {
  const config = await fetchJson('/config.json');
  const name = (config.models ?? [])[0];
  if (!name) throw new Error('the server has no model registered');
  $('model-name').textContent = name;
  const signalUrl = (config.signals ?? {})[name];
  const [{ default: uPlot }, handler, recording] = await Promise.all([
    import('/vendor/uplot/uPlot.esm.js'),
    PredictionHandler.create({ registry: '/models', model: name, cloud: cloudUrl(config), policy: pagePolicy() }),
    signalUrl ? fetchJson(signalUrl) : null,
  ]);
  $('model-version').textContent = handler.modelVersion;
  $('signal-source').textContent = recording ? `${recording.source}, ${recording.sampling_rate} Hz, ${recording.unit}` : 'built-in pulse train';
  await handler.edgeReady();
  const demo = new Demo(handler, recording ? recording.data : pulseSignal(PULSE_LENGTH), uPlot);
  window.demo = demo;
  $('next').addEventListener('click', () => demo.step());
  let timer = null;
  $('stream').addEventListener('change', (event) => {
    clearInterval(timer);
    timer = event.target.checked ? setInterval(() => demo.step(), 1000) : null;
  });
  for (const radio of document.querySelectorAll('input[name="privacy"]')) radio.addEventListener('change', () => demo.step({ advance: false }));
  wirePersonalisation(demo, recording?.sampling_rate);
  await demo.step();
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  status.textContent = `Error: ${error.message}`;
  status.className = 'error';
  document.body.dataset.ready = 'error';
});
