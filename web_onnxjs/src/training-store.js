// What training keeps in IndexedDB (structured clones, so Float32Arrays stay float32 exactly):
//   checkpoints:      MODEL@VERSION#FINGERPRINT → {params, state, step, epoch, rng, loss, ...}
//                     written after every chunk; the next personalize() on the same data resumes
//   personalizations: MODEL@VERSION → {baseVersion, steps, samples, loss, parameters, ...}
//                     the adopted result, loaded again after a reload
// Cache Storage (the model store) takes Responses only; IndexedDB is the browser's store for
// typed records. The wrapper is a few promise adapters, so no library.

const DB_NAME = 'edgecloud-training';
const STORES = ['checkpoints', 'personalizations'];

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let opening = null;
function database() {
  opening ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      for (const name of STORES) if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opening;
}

async function transact(store, mode, work) {
  const db = await database();
  const tx = db.transaction(store, mode);
  const done = new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
  const result = await work(tx.objectStore(store));
  await done;
  return result;
}

/** Hex SHA-256 of what decides a run's result: the model version, the examples and the options. */
export async function dataFingerprint(version, examples, options) {
  const parts = [new TextEncoder().encode(JSON.stringify({ version, count: examples.count, options }))];
  for (const group of [examples.data, examples.targets]) {
    for (const name of Object.keys(group).sort()) {
      parts.push(new TextEncoder().encode(`${name}:${group[name].rowShape}`), new Uint8Array(group[name].values.buffer));
    }
  }
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.byteLength;
  }
  const digest = await crypto.subtle.digest('SHA-256', joined);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export class TrainingStore {
  constructor(model) {
    this.model = model;
  }

  #key(version, fingerprint = null) {
    return fingerprint ? `${this.model}@${version}#${fingerprint}` : `${this.model}@${version}`;
  }

  checkpoint(version, fingerprint) {
    return transact('checkpoints', 'readonly', (s) => request(s.get(this.#key(version, fingerprint))));
  }

  saveCheckpoint(version, fingerprint, record) {
    return transact('checkpoints', 'readwrite', (s) => request(s.put(record, this.#key(version, fingerprint))));
  }

  dropCheckpoint(version, fingerprint) {
    return transact('checkpoints', 'readwrite', (s) => request(s.delete(this.#key(version, fingerprint))));
  }

  personalization(version) {
    return transact('personalizations', 'readonly', (s) => request(s.get(this.#key(version))));
  }

  savePersonalization(version, record) {
    return transact('personalizations', 'readwrite', (s) => request(s.put(record, this.#key(version))));
  }

  /** Forget this model's checkpoints and personalisations, except those of the versions in `keep`. */
  async dropExcept(keep) {
    const kept = new Set(keep.map((v) => this.#key(v)));
    const prefix = `${this.model}@`;
    const dropped = [];
    for (const store of STORES) {
      await transact(store, 'readwrite', async (s) => {
        for (const key of await request(s.getAllKeys())) {
          if (!key.startsWith(prefix) || kept.has(key.split('#')[0])) continue;
          if (store === 'personalizations') dropped.push(key.slice(prefix.length));
          await request(s.delete(key));
        }
      });
    }
    return dropped; // versions whose personalisation was dropped
  }
}
