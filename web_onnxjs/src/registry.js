// The static model registry: models/NAME/latest.json → models/NAME/VERSION/{model.json, files}.

/** {version, manifest, baseUrl} of the version latest.json names. */
export async function fetchLatest(registryUrl, name) {
  const latest = await fetchJson(`${registryUrl}/${name}/latest.json`);
  return fetchVersion(registryUrl, name, latest.version);
}

export async function fetchVersion(registryUrl, name, version) {
  const baseUrl = `${registryUrl}/${name}/${version}`;
  const manifest = await fetchJson(`${baseUrl}/model.json`);
  return { version: String(version), manifest, baseUrl };
}

export async function fetchJson(url, init = undefined) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response.json();
}

/** The sample recorded at export time (plain tensors keyed by input name). */
export async function fetchSample(baseUrl) {
  return (await fetchJson(`${baseUrl}/sample.json`)).inputs;
}
