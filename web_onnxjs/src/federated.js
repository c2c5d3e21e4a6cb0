// Opt-in federated sharing: what handler.shareUpdate() sends. Only the parameter delta of a
// personalisation against its base version, the number of examples it was trained on, the base
// version and a random client id kept in this browser (no identity), or the client id and token
// the operator issued when the page options carry one — never the examples.
// The aggregator's URLs and answers are in docs/federated.md.

import { CODES, EdgecloudError } from './errors.js';

const CLIENT_KEY = 'edgecloud.federated.client';

/** This browser's random client id (created once, kept in localStorage; one per origin, no identity). */
export function clientId(storage = globalThis.localStorage) {
  let id = storage?.getItem(CLIENT_KEY);
  if (!id) {
    id = `c-${crypto.randomUUID()}`;
    storage?.setItem(CLIENT_KEY, id);
  }
  return id;
}

/**
 * The client id and token an update is sent with: with a token (issued by the operator's login for
 * an aggregator started with --client-secret, docs/federated.md), the id the token names; else this
 * browser's random id.
 */
export function sender(token, storage) {
  if (token == null) return { client: clientId(storage), token: null };
  if (typeof token !== 'string' || token.split('.').length !== 3) {
    throw new EdgecloudError(CODES.BAD_INPUT, 'federated.token must be the CLIENT.EXPIRES.SIGNATURE string the operator issued');
  }
  return { client: token.split('.')[0], token };
}

/** The update's JSON body: delta = personalised − base, per parameter name (docs/training.md); `token` if given. */
export function updateBody(personalization, base, client, token = null) {
  const delta = {};
  for (const [name, tensor] of Object.entries(personalization.parameters)) {
    const shared = base[name];
    if (!shared || shared.data.length !== tensor.data.length) {
      throw new EdgecloudError(CODES.BAD_INPUT, `parameter ${name} does not match the base version's`);
    }
    const values = new Array(tensor.data.length);
    for (let i = 0; i < values.length; i += 1) values[i] = tensor.data[i] - shared.data[i];
    delta[name] = { shape: [...tensor.shape], data: values };
  }
  const body = { client, base_version: String(personalization.baseVersion), samples: personalization.samples, delta };
  return token ? { ...body, token } : body;
}

/**
 * POST the update to URL/MODEL/updates. Resolves {accepted: true, round, baseVersion, norm, clipped,
 * staleness, weight} (staleness: versions the update's base was behind the round's, buffered rounds)
 * or, when the aggregator refuses it (4xx), {accepted: false, status, code, message}; a network
 * failure or 5xx throws cloud-unreachable / cloud-error. `local-only` never sends.
 */
export async function shareUpdate({ url, token = null, model, privacy, personalization, base, storage, signal }) {
  if (privacy === 'local-only') {
    throw new EdgecloudError(CODES.NOT_ALLOWED, 'local-only: nothing leaves this device, not even a parameter update');
  }
  if (!url) throw new EdgecloudError(CODES.NOT_ALLOWED, 'this page does not share updates (no `federated` URL given)');
  if (!personalization) throw new EdgecloudError(CODES.BAD_INPUT, 'nothing to share: personalize() first');
  const from = sender(token, storage);
  const body = JSON.stringify(updateBody(personalization, base, from.client, from.token));
  let response;
  try {
    response = await fetch(`${url.replace(/\/+$/, '')}/${encodeURIComponent(model)}/updates`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body, signal,
    });
  } catch (error) {
    throw new EdgecloudError(CODES.CLOUD_UNREACHABLE, `sending the update failed: ${error.message}`);
  }
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    return { accepted: true, round: answer.round, baseVersion: answer.base_version, norm: answer.norm, clipped: answer.clipped,
      staleness: answer.staleness ?? 0, weight: answer.weight ?? 1 };
  }
  if (response.status >= 500) throw new EdgecloudError(CODES.CLOUD_ERROR, `the aggregator answered ${response.status}`);
  return { accepted: false, status: response.status, code: answer.error ?? null, message: answer.message ?? response.statusText };
}
