// Trainable parameters inside an inference file, by the byte ranges model.json's `training`
// entry records (`locations`, docs/training.md): read the base values and write a personalised
// copy of the file without a protobuf parser in the page. The exporter proved each range holds
// exactly that initializer's float32 little-endian bytes (every browser is little-endian).
//
// An edge file whose lowering rewrote a trained tensor has no location of it (`--trainable all`
// over an LSTM: unrolled per gate, the Adds of all-zero biases folded away, so there is no place a
// trained bias could go). The personalised model then runs the cloud file, which holds every
// parameter, on onnxruntime-web (wasm), the runtime that runs the unlowered file; a federated
// round instead lowers its new cloud file again (export/federated_version.py), which the page cannot.

function rangeOf(parameter, file, size) {
  const where = parameter.locations?.[file];
  const length = 4 * parameter.shape.reduce((a, b) => a * b, 1);
  if (!where) throw new Error(`model.json records no location of parameter '${parameter.name}' in ${file}`);
  if (where.length !== length || where.offset < 0 || where.offset + where.length > size) {
    throw new Error(`parameter '${parameter.name}': its location in ${file} does not fit a float32[${parameter.shape}] in ${size} bytes`);
  }
  return where;
}

/** {NAME: Float32Array} of every trainable parameter, read from `bytes` of inference file `file`. */
export function readParameters(bytes, training, file) {
  const out = {};
  for (const parameter of training.parameters) {
    const { offset, length } = rangeOf(parameter, file, bytes.byteLength);
    out[parameter.name] = new Float32Array(bytes.slice(offset, offset + length));
  }
  return out;
}

/** A copy of `bytes` (inference file `file`) with every parameter overwritten by `params[NAME]`. */
export function writeParameters(bytes, training, file, params) {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(new Uint8Array(bytes));
  for (const parameter of training.parameters) {
    const { offset, length } = rangeOf(parameter, file, bytes.byteLength);
    const values = params[parameter.name];
    if (!values || values.length * 4 !== length) throw new Error(`no values of the right size for parameter '${parameter.name}'`);
    copy.set(new Uint8Array(Float32Array.from(values).buffer), offset);
  }
  return copy.buffer;
}

/** The file the personalised model runs: the edge file if it holds every parameter, else the cloud file if it does. */
export function personalizedFile(training, manifest) {
  const files = [manifest.edge.file, manifest.cloud?.file].filter(Boolean);
  const file = files.find((name) => training.parameters.every((parameter) => parameter.locations?.[name]));
  if (!file) throw new Error(`model.json records no file holding every trainable parameter (looked in ${files.join(', ')})`);
  return file;
}

/** `plan` (policy.js planEdgeRuntime) cut to the candidates that can run the personalised model. */
export function personalizedPlan(plan, manifest) {
  const file = personalizedFile(manifest.training, manifest);
  const candidates = plan.candidates.filter((candidate) => (candidate.file ?? manifest.edge.file) === file);
  if (candidates.length) return { ...plan, candidates };
  const reason = `the personalised parameters have no location in ${manifest.edge.file}: onnxruntime-web/wasm on ${file}`;
  return { candidates: [{ runtime: 'onnxruntime-web', backend: 'wasm', file }], reason };
}
