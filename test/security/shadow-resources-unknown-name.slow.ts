// GATE_SHADOW_RESOURCES named catalog resources without being checked against the catalog: a
// misspelt name (`package` for `packages`, `Packages`) shadowed nothing, and the roll-out meant
// to only log package denies refused them, without a word. A name the catalog has no routes for
// now stops the start (exit 2), naming the setting and the catalog's resources.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { serveOutcome } from '../helpers/serve.ts'
import { startTestGate } from '../helpers/gate.ts'

test('a GATE_SHADOW_RESOURCES name that is no catalog resource stops the start', async (t) => {
  for (const names of ['package', 'packages,Releases', ' packages , release ']) {
    await assert.rejects(startTestGate(t, { GATE_SHADOW_RESOURCES: names }), (err: Error) =>
      err.name === 'ConfigError' && /^GATE_SHADOW_RESOURCES names no catalog resource: /.test(err.message) && err.message.includes('packages, pipelines'), names)
  }
  // Every resource the catalog has is taken.
  await startTestGate(t, { GATE_SHADOW_RESOURCES: 'packages, releases,container_registry,virtual_registries' })
})

test('serve exits 2 with one line naming the setting', async (t) => {
  const gitlab = await startFakeGitlab({ fallback: (req, res) => { req.resume(); res.end('{}') } })
  t.after(() => gitlab.close())
  const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_SHADOW_RESOURCES: 'package' })
  assert.equal(outcome.kind, 'refused')
  const { code, stderr } = outcome as { code: number, stderr: string }
  assert.equal(code, 2, stderr)
  assert.match(stderr, /^job-token-gate: GATE_SHADOW_RESOURCES names no catalog resource: package \(the catalog's resources: /)
})
