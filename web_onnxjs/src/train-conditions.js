// When the browser may train: like updater.js's updateBlocker, a function of a navigator-like
// `environment` and the page's `conditions`, checked between chunks. Training needs no network,
// so being offline or on a slow connection never blocks it; a battery running low, data saver
// (the person asked the device to hold back) and, when asked, a visible or busy page do.

export const DEFAULT_CONDITIONS = Object.freeze({
  minBattery: 0.5, // discharging at or below this level → pause (charging always allows)
  respectSaveData: true, // navigator.connection.saveData → pause
  requireHidden: false, // train only while the page is hidden
  requireIdle: false, // train only after idleMs without pointer or key input
  idleMs: 10000,
  pollMs: 2000, // while paused, look again this often
});

let lastInput = Date.now();
if (typeof addEventListener === 'function' && typeof document !== 'undefined') {
  for (const type of ['pointerdown', 'keydown', 'wheel', 'touchstart']) {
    addEventListener(type, () => { lastInput = Date.now(); }, { passive: true, capture: true });
  }
}

/**
 * Why training may not run now, or null when it may. `environment` is navigator-like
 * ({connection: {saveData}, getBattery()}) and may carry `visibilityState` and `idle` (boolean)
 * to stand in for the document's and the input tracker's.
 */
export async function trainingBlocker(environment = globalThis.navigator ?? {}, conditions = {}) {
  const rules = { ...DEFAULT_CONDITIONS, ...conditions };
  if (rules.respectSaveData && environment.connection?.saveData) return 'data saver is on';
  if (typeof environment.getBattery === 'function') {
    const battery = await environment.getBattery();
    if (!battery.charging && battery.level <= rules.minBattery) {
      return `battery is discharging at ${Math.round(battery.level * 100)} % (≤ ${Math.round(rules.minBattery * 100)} %)`;
    }
  }
  if (rules.requireHidden) {
    const visibility = environment.visibilityState ?? globalThis.document?.visibilityState ?? 'hidden';
    if (visibility !== 'hidden') return 'the page is visible (training waits until it is hidden)';
  }
  if (rules.requireIdle) {
    const idle = environment.idle ?? Date.now() - lastInput >= rules.idleMs;
    if (!idle) return `the person used the page in the last ${rules.idleMs} ms`;
  }
  return null;
}
