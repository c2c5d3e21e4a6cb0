// A seeded shuffle whose whole state is one uint32, so a checkpoint can store it and a resumed run
// draws the same orders. Math.random has no seed and crypto.getRandomValues no state to save;
// mulberry32 is a few lines (tests/web/train_fixture.py mirrors it for the reference runs).

/** One draw: [next state, a float in [0, 1)]. */
function mulberry32(state) {
  const next = (state + 0x6d2b79f5) >>> 0;
  let t = Math.imul(next ^ (next >>> 15), next | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return [next, ((t ^ (t >>> 14)) >>> 0) / 4294967296];
}

/** The seed as a PRNG state (any integer; taken modulo 2^32). */
export function seedState(seed) {
  return Number(BigInt.asUintN(32, BigInt(Math.trunc(seed))));
}

/** Fisher–Yates order of `count` examples from `state`: {order, state (after the draws)}. */
export function shuffledOrder(count, state) {
  const order = Array.from({ length: count }, (_, i) => i);
  let current = state;
  for (let i = count - 1; i > 0; i -= 1) {
    let value;
    [current, value] = mulberry32(current);
    const j = Math.floor(value * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return { order, state: current };
}
