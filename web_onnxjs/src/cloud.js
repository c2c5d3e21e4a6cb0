// The cloud side: Multi Model Server's REST API, plain JSON format.

import { flatten, nest } from './tensors.js';

/** POST plain tensors to /predictions/NAME; plain tensors back, or an Error with MMS's message. */
export async function predictCloud(cloudUrl, name, feeds, { signal } = {}) {
  const inputs = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, nest(t.data, t.shape)]));
  const response = await fetch(`${cloudUrl}/predictions/${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ inputs }),
    signal,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(`cloud answered ${response.status}: ${body.message ?? response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return Object.fromEntries(Object.entries(body.outputs).map(([k, v]) => [k, flatten(v)]));
}

/** The health word from /ping's body ("Healthy", ...); /ping is always HTTP 200. */
export async function cloudHealth(cloudUrl, { signal } = {}) {
  const response = await fetch(`${cloudUrl}/ping`, { signal });
  return (await response.json()).status;
}
