// GATE_UNRESOLVED_PROJECT=resolve (the default) needs GATE_SERVICE_TOKEN: without it the gate
// refuses to start rather than leave group and instance routes unchecked; defer and deny start.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { IdentityError, type ClosableJobResolver } from '../../src/identity/types.ts'

const resolver: ClosableJobResolver = { resolve: async () => { throw new IdentityError('TOKEN_UNKNOWN') }, close: async () => {} }
const env = { GATE_UPSTREAM_URL: 'http://127.0.0.1:9', GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0' }

test('resolve is the default, and refuses to start without GATE_SERVICE_TOKEN, naming both settings', async () => {
  const config = loadConfig(env)
  assert.equal(config.unresolvedProject, 'resolve')
  const store = await createMemoryStore()
  assert.throws(() => createGate(config, { store, resolver }),
    (err: Error) => err instanceof ConfigError && /GATE_UNRESOLVED_PROJECT=resolve/.test(err.message) && /GATE_SERVICE_TOKEN/.test(err.message))
  await store.close()
})

test('defer and deny start without a service token', async () => {
  for (const mode of ['defer', 'deny']) {
    const store = await createMemoryStore()
    const gate = createGate(loadConfig({ ...env, GATE_UNRESOLVED_PROJECT: mode }), { store, resolver })
    await gate.close(0)
  }
  assert.throws(() => loadConfig({ ...env, GATE_UNRESOLVED_PROJECT: 'guess' }), /GATE_UNRESOLVED_PROJECT must be one of resolve, defer, deny/)
})
