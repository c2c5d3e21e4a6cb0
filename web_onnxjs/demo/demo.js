// The walking skeleton's page: run the registry's model with ONNX.js (cpu, wasm) and in the cloud
// (MMS), show the numbers side by side and draw the input window with each forecast.

import { fetchJson, fetchLatest, fetchSample } from '../src/registry.js';
import { createOnnxjsSession, runOnnxjs } from '../src/onnxjs-runtime.js';
import { predictCloud } from '../src/cloud.js';
import { maxAbsDiff } from '../src/tensors.js';

const status = document.getElementById('status');
const rows = document.querySelector('#results tbody');

function addRow(runtime, backend, latencyMs, diff, outputs, error) {
  const row = document.createElement('tr');
  const first = outputs ? Object.values(outputs)[0].data.slice(0, 4).map((v) => Number(v).toFixed(5)).join(', ') : error;
  const diffText = diff === undefined ? '—' : diff.toExponential(2);
  const cells = [runtime, backend, latencyMs === undefined ? '—' : latencyMs.toFixed(2), diffText, first];
  for (const text of cells) {
    const cell = document.createElement('td');
    cell.textContent = text;
    row.appendChild(cell);
  }
  if (diff !== undefined) row.children[3].className = diff <= 1e-4 ? 'ok' : 'bad';
  rows.appendChild(row);
  row.dataset.runtime = `${runtime}/${backend}`;
}

async function timed(fn) {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

async function drawChart(window, forecasts) {
  const { default: uPlot } = await import('/vendor/uplot/uPlot.esm.js');
  const n = window.length;
  const [first] = Object.values(forecasts);
  const h = first ? first.length : 0;
  const xs = Array.from({ length: n + h }, (_, i) => i);
  const signal = [...window, ...Array(h).fill(null)];
  const series = [{}, { label: 'signal', stroke: '#4a5468' }];
  const data = [xs, signal];
  const colours = ['#176b2c', '#1f5fbf', '#b35c00'];
  Object.entries(forecasts).forEach(([label, values], i) => {
    data.push([...Array(n).fill(null), ...values]);
    series.push({ label, stroke: colours[i % colours.length], dash: i ? [6, 4] : undefined });
  });
  new uPlot({ width: 860, height: 280, series, scales: { x: { time: false } } }, data, document.getElementById('chart'));
}

async function main() {
  const config = await fetchJson('/config.json');
  const name = config.models[0];
  if (!name) throw new Error('the server has no model registered');
  const { version, manifest, baseUrl } = await fetchLatest('/models', name);
  document.getElementById('model-name').textContent = name;
  document.getElementById('model-version').textContent = version;
  const feeds = await fetchSample(baseUrl);
  const inputNames = manifest.inputs.map((i) => i.name);

  let cloud;
  try {
    const [outputs, ms] = await timed(() => predictCloud(config.cloud, name, feeds));
    cloud = outputs;
    addRow('Multi Model Server', 'onnxruntime', ms, 0, outputs);
  } catch (error) {
    addRow('Multi Model Server', 'onnxruntime', undefined, undefined, null, error.message);
  }

  const forecasts = {};
  if (cloud) forecasts.cloud = Object.values(cloud)[0].data;
  const modelUrl = `${baseUrl}/${manifest.edge.file}`;
  for (const backend of ['cpu', 'wasm']) {
    try {
      const session = await createOnnxjsSession(modelUrl, backend);
      const [outputs, ms] = await timed(() => runOnnxjs(session, feeds, inputNames));
      addRow('ONNX.js', backend, ms, cloud ? maxAbsDiff(outputs, cloud) : undefined, outputs);
      forecasts[`ONNX.js ${backend}`] = Object.values(outputs)[0].data;
    } catch (error) {
      addRow('ONNX.js', backend, undefined, undefined, null, error.message);
    }
  }
  const firstInput = feeds[inputNames[0]];
  if (firstInput.shape.length === 2 && firstInput.shape[0] === 1) await drawChart(firstInput.data, forecasts);
  status.textContent = `Ran ${name} v${version} in the browser and in the cloud.`;
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  status.textContent = `Error: ${error.message}`;
  status.className = 'error';
  document.body.dataset.ready = 'error';
});
