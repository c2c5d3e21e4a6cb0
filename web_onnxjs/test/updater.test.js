// When a background update may run: a pure function of a navigator-like environment.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { updateBlocker } from '../src/updater.js';

const battery = (charging, level) => ({ getBattery: async () => ({ charging, level }) });

test('a capable, online, charging device may update', async () => {
  assert.equal(await updateBlocker({ onLine: true, ...battery(true, 0.1) }), null);
  assert.equal(await updateBlocker({}), null); // no Battery API: allowed
});

test('each condition that does not hold is named', async () => {
  assert.equal(await updateBlocker({ onLine: false }), 'offline');
  assert.equal(await updateBlocker({ connection: { saveData: true } }), 'data saver is on');
  assert.equal(await updateBlocker({ connection: { effectiveType: '2g' } }), 'connection is 2g');
  assert.equal(await updateBlocker(battery(false, 0.5)), 'battery is discharging at or below 50 %');
  assert.equal(await updateBlocker(battery(false, 0.51)), null);
});

test('overrides force single conditions either way', async () => {
  assert.equal(await updateBlocker({ onLine: false }, { online: true }), null);
  assert.equal(await updateBlocker({}, { battery: false }), 'battery is discharging at or below 50 %');
});
