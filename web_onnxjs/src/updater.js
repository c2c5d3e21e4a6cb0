// Background model updates in the spirit of "use the local model, update in the background":
// look for a new version only when the device allows it (online, no data saving, not 2g, and
// where the Battery API exists, charging or above half charge), at idle time; the new version is
// downloaded and verified by the store, then handed to `adopt`, which switches only if it loads.

const SLOW_CONNECTIONS = new Set(['slow-2g', '2g']);

/**
 * Why an update check may not run now, or null when it may. `environment` is navigator-like
 * ({onLine, connection: {saveData, effectiveType}, getBattery()}); `overrides` forces single
 * conditions ({online, saveData, slowConnection, battery}: true = allowed, false = refused).
 */
export async function updateBlocker(environment = globalThis.navigator ?? {}, overrides = {}) {
  const connection = environment.connection ?? {};
  const checks = {
    online: () => environment.onLine !== false,
    saveData: () => !connection.saveData,
    slowConnection: () => !SLOW_CONNECTIONS.has(connection.effectiveType),
    battery: async () => {
      if (typeof environment.getBattery !== 'function') return true;
      const battery = await environment.getBattery();
      return battery.charging || battery.level > 0.5;
    },
  };
  const reasons = {
    online: 'offline',
    saveData: 'data saver is on',
    slowConnection: `connection is ${connection.effectiveType}`,
    battery: 'battery is discharging at or below 50 %',
  };
  for (const [name, check] of Object.entries(checks)) {
    const allowed = name in overrides ? overrides[name] : await check();
    if (!allowed) return reasons[name];
  }
  return null;
}

function whenIdle(callback) {
  if (typeof requestIdleCallback === 'function') return requestIdleCallback(callback, { timeout: 5000 });
  return setTimeout(callback, 0);
}

export class BackgroundUpdater {
  /**
   * store: ModelStore; currentVersion(): the version in use; adopt(version): load + switch,
   * resolves true when switched. Options: intervalMs (between checks), environment, conditions.
   */
  constructor({ store, currentVersion, adopt, intervalMs = 60000, environment, conditions = {} }) {
    Object.assign(this, { store, currentVersion, adopt, intervalMs, environment, conditions });
    this.last = null; // {at, checked, reason, version}
    this.timer = null;
    this.running = null;
  }

  /** Check now (if the conditions allow); resolves {checked, reason, version}. */
  check() {
    this.running ??= this.#check().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async #check() {
    const record = (result) => {
      this.last = { at: new Date().toISOString(), ...result };
      return this.last;
    };
    const blocker = await updateBlocker(this.environment ?? globalThis.navigator ?? {}, this.conditions);
    if (blocker) return record({ checked: false, reason: `skipped: ${blocker}` });
    const current = this.currentVersion();
    let latest;
    try {
      latest = await this.store.latestVersion();
    } catch (error) {
      return record({ checked: true, reason: `registry unreachable: ${error.message}`, version: current });
    }
    if (latest === current) return record({ checked: true, reason: 'up to date', version: current });
    try {
      const switched = await this.adopt(latest);
      return record({ checked: true, reason: switched ? `switched ${current} → ${latest}` : `kept ${current}`, version: this.currentVersion() });
    } catch (error) {
      return record({ checked: true, reason: `kept ${current}: v${latest} ${error.message}`, version: current });
    }
  }

  /** Check at idle time now and then every intervalMs. */
  start() {
    const tick = () => {
      whenIdle(() => this.check().finally(() => {
        if (this.timer !== null) this.timer = setTimeout(tick, this.intervalMs);
      }));
    };
    this.timer = setTimeout(tick, 0);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}
