// Trainable parameters inside an inference file, by the byte ranges model.json's `training`
// entry records (`locations`, docs/training.md): read the base values and write a personalised
// copy of the file without a protobuf parser in the page. The exporter proved each range holds
// exactly that initializer's float32 little-endian bytes (every browser is little-endian).

function rangeOf(parameter, file, size) {
  const where = parameter.locations?.[file];
  const length = 4 * parameter.shape.reduce((a, b) => a * b, 1);
  if (!where) throw new Error(`model.json records no location of parameter '${parameter.name}' in ${file}`);
  if (where.length !== length || where.offset < 0 || where.offset + where.length > size) {
    throw new Error(`parameter '${parameter.name}': its location in ${file} does not fit a float32[${parameter.shape}] in ${size} bytes`);
  }
  return where;
}

/**
 * The inference file to read the base parameters from: `preferred` (the edge file) when every
 * parameter has a location in it, else the first file that has them all (the lowering may rewrite a
 * trained tensor, an LSTM or a Loop unrolled per gate: then only the cloud file, run on onnxruntime-web).
 */
export function parameterFile(training, preferred) {
  const holdsAll = (file) => training.parameters.every((parameter) => parameter.locations?.[file]);
  if (holdsAll(preferred)) return preferred;
  const found = Object.keys(training.parameters[0]?.locations ?? {}).find(holdsAll);
  if (!found) throw new Error(`model.json records no inference file holding every trainable parameter (not even ${preferred})`);
  return found;
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
