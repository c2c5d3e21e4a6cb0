// The static model registry: models/NAME/latest.json → models/NAME/VERSION/{model.json, files}.
// Which version to load (and checking its files) is ModelStore's job; these are the plain fetches.

/** The JSON body of `url`; a non-2xx answer is an Error naming the URL and the status. */
export async function fetchJson(url, init = undefined) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response.json();
}

/** The sample recorded at export time (plain tensors keyed by input name). */
export async function fetchSample(baseUrl) {
  return (await fetchJson(`${baseUrl}/sample.json`)).inputs;
}
