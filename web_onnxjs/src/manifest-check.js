// model.json and latest.json as the page fetches them, checked before anything reads them: a
// manifest that is not what registry/schema/model.schema.json describes is a `bad-model` error
// naming the field, never a TypeError deep inside the policy or a worker. Hand-written (not a
// vendored JSON Schema validator) because the page checks only the fields it uses, in a few
// hundred bytes; the Python side validates the whole schema when it writes and reads.

import { CODES, EdgecloudError } from './errors.js';

export const SCHEMA_VERSION = 1;

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const isName = (value) => typeof value === 'string' && value.length > 0;
const isDim = (value) => value === null || (Number.isInteger(value) && value >= 0);

function fail(where, what) {
  throw new EdgecloudError(CODES.BAD_MODEL, `${where} ${what}`);
}

function tensors(where, field, list) {
  if (!Array.isArray(list) || list.length === 0) fail(where, `${field} must be a non-empty list of tensors`);
  list.forEach((spec, i) => {
    if (!isObject(spec) || !isName(spec.name) || !isName(spec.dtype)) fail(where, `${field}[${i}] needs a name and a dtype`);
    if (!Array.isArray(spec.shape) || !spec.shape.every(isDim)) fail(where, `${field}[${i}].shape must list sizes (null: free)`);
  });
}

function listedFile(where, field, file, files) {
  if (!isName(file)) fail(where, `${field} must name a file`);
  if (!Object.hasOwn(files, file)) fail(where, `${field} names ${file}, which files does not list`);
}

function edgeEntry(where, field, edge, files) {
  if (!isObject(edge)) fail(where, `${field} must be an object`);
  listedFile(where, `${field}.file`, edge.file, files);
  if (edge.runtime !== undefined && !isName(edge.runtime)) fail(where, `${field}.runtime must be a runtime name`);
  if (edge.inputs !== undefined) tensors(where, `${field}.inputs`, edge.inputs);
  if (edge.backends !== undefined && !Array.isArray(edge.backends)) fail(where, `${field}.backends must be a list`);
  if (edge.verified !== undefined) {
    if (!isObject(edge.verified)) fail(where, `${field}.verified must be an object`);
    if (edge.verified.results !== undefined && !Array.isArray(edge.verified.results)) fail(where, `${field}.verified.results must be a list`);
  }
  if (edge.ranking !== undefined) {
    if (!Array.isArray(edge.ranking)) fail(where, `${field}.ranking must be a list`);
    edge.ranking.forEach((row, i) => {
      if (!isObject(row) || !isName(row.runtime) || !isName(row.backend)) fail(where, `${field}.ranking[${i}] needs a runtime and a backend`);
    });
  }
}

function trainingEntry(where, training, files) {
  if (!isObject(training)) fail(where, 'training must be an object');
  if (!Array.isArray(training.parameters) || training.parameters.length === 0) fail(where, 'training.parameters must be a non-empty list');
  training.parameters.forEach((p, i) => {
    if (!isObject(p) || !isName(p.name) || !Array.isArray(p.shape)) fail(where, `training.parameters[${i}] needs a name and a shape`);
    if (p.locations !== undefined && !isObject(p.locations)) fail(where, `training.parameters[${i}].locations must be an object`);
  });
  if (training.file !== undefined) listedFile(where, 'training.file', training.file, files);
  if (training.edge !== undefined) edgeEntry(where, 'training.edge', training.edge, files);
}

/**
 * `manifest` if it is a model.json of schema 1 whose fields the page uses have their types, else
 * bad-model naming the first problem. `where` names it in the message ("model.json of NAME vV").
 */
export function checkManifest(manifest, where = 'model.json') {
  if (!isObject(manifest)) fail(where, 'is not a JSON object');
  if (manifest.schema !== SCHEMA_VERSION) {
    fail(where, manifest.schema === undefined ? 'names no schema version'
      : `has schema ${JSON.stringify(manifest.schema)}, which this page cannot read (it reads schema ${SCHEMA_VERSION})`);
  }
  if (!isName(manifest.name)) fail(where, 'names no model');
  if (typeof manifest.version !== 'string' || !/^[0-9]+$/.test(manifest.version)) fail(where, 'version must be a whole number as text');
  tensors(where, 'inputs', manifest.inputs);
  tensors(where, 'outputs', manifest.outputs);
  if (!isObject(manifest.files)) fail(where, 'files must be an object');
  for (const [file, entry] of Object.entries(manifest.files)) {
    if (!isObject(entry) || typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) fail(where, `files.${file} needs a SHA-256`);
    if (!Number.isInteger(entry.size) || entry.size < 0) fail(where, `files.${file} needs a size`);
  }
  if (!isObject(manifest.cloud)) fail(where, 'cloud must be an object');
  listedFile(where, 'cloud.file', manifest.cloud.file, manifest.files);
  edgeEntry(where, 'edge', manifest.edge, manifest.files);
  if (manifest.training !== undefined) trainingEntry(where, manifest.training, manifest.files);
  if (manifest.serving !== undefined) {
    if (!isObject(manifest.serving)) fail(where, 'serving must be an object');
    if (manifest.serving.allow_nan !== undefined && typeof manifest.serving.allow_nan !== 'boolean') fail(where, 'serving.allow_nan must be true or false');
  }
  return manifest;
}

/** The version latest.json names, as text; bad-model when it names none. */
export function checkLatest(latest, where = 'latest.json') {
  if (!isObject(latest)) fail(where, 'is not a JSON object');
  const version = typeof latest.version === 'number' ? String(latest.version) : latest.version;
  if (typeof version !== 'string' || !/^[0-9]+$/.test(version)) fail(where, 'names no version');
  return version;
}
