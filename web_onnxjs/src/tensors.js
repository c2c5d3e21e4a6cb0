// Plain tensors shared by every runtime and the cloud client: {dtype, shape, data: flat Array}.
// This is the format of sample.json written by `edgecloud export`.

const TYPED = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

/** The typed array class that holds `dtype` (BigInt64Array for int64), or undefined. */
export function typedArrayClass(dtype) {
  return TYPED[dtype];
}

/** A typed array for a plain tensor (bool as 0/1 bytes, int64 as BigInt). */
export function toTypedArray({ dtype, data }) {
  const Typed = TYPED[dtype];
  if (!Typed) throw new Error(`unsupported dtype ${dtype}`);
  if (dtype === 'int64') return Typed.from(data, (v) => BigInt(v));
  if (dtype === 'bool') return Typed.from(data, (v) => (v ? 1 : 0));
  return Typed.from(data);
}

/** Flat data + shape → nested arrays (the cloud's plain JSON format). */
export function nest(data, shape) {
  if (shape.length === 0) return data[0];
  if (shape.length === 1) return Array.from(data);
  const [head, ...rest] = shape;
  const step = rest.reduce((a, b) => a * b, 1);
  const out = [];
  for (let i = 0; i < head; i += 1) out.push(nest(data.slice(i * step, (i + 1) * step), rest));
  return out;
}

/** Nested arrays → {shape, data}. */
export function flatten(nested) {
  const shape = [];
  let probe = nested;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  return { shape, data: Array.isArray(nested) ? nested.flat(Infinity) : [nested] };
}

/** Largest |a - b| over every output both sides have; Infinity if a shape or name differs. */
export function maxAbsDiff(a, b) {
  let worst = 0;
  for (const [name, left] of Object.entries(a)) {
    const right = b[name];
    if (!right || right.data.length !== left.data.length) return Infinity;
    for (let i = 0; i < left.data.length; i += 1) {
      const d = Math.abs(Number(left.data[i]) - Number(right.data[i]));
      if (Number.isNaN(d)) return Infinity;
      if (d > worst) worst = d;
    }
  }
  return worst;
}
