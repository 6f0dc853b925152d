// Finding: a change the store refused before writing anything was logged in the audit trail as
// `job token permissions change not confirmed: it may have been made` (level error), the line
// meant for a write whose outcome is unknown (a Redis command timeout after Redis may have run
// the script). A removal refused so (the memory store's state file changed by another process, a
// save that failed, Redis found to have lost the store's data by the write script itself, a
// command ioredis had no connection to send) read as one that may have taken effect. The store now
// says when it is sure it wrote nothing, and the audit line says the change was refused, not made
// (`outcome: "not_made"`, level warn); one whose outcome is unknown keeps the old line
// (`outcome: "unknown"`).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { startStoreGate } from '../helpers/store-gate.ts'

const ADMIN = 'operator-token-for-the-audit-test'

test('the audit trail says a change the store refused before writing was not made', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-audit-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')
  const seed = await createMemoryStore({ file })
  await seed.put(validateProjectGrants({ projectId: 300, projectPath: 'other/tools', inboundEnabled: false, entries: [] }, { settings: createInstanceSettings({ enforceInboundScope: false }) }))
  await seed.close()

  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  // The gate's store does not look at the file on its own: its write finds the change.
  const store = await createMemoryStore({ file, watchIntervalMs: 3_600_000 })
  t.after(() => store.close())
  const gate = await startStoreGate(t, store, { env: { GATE_ADMIN_TOKEN: ADMIN }, logger })
  // Another process writes the state file meanwhile.
  const other = await createMemoryStore({ file })
  await other.put(validateProjectGrants({ projectId: 400, projectPath: 'other/thing', inboundEnabled: true, entries: [] }, { settings: createInstanceSettings() }))
  await other.close()

  const write = await fetch(`${gate.url}/api/v4/projects/300/job_token_scope`, { method: 'PATCH', headers: { 'private-token': ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true }) })
  assert.equal(write.status, 503)
  const requestId = (await write.json() as { request_id: string }).request_id
  const audit = lines.filter(l => l.audit === true && l.request_id === requestId)
  assert.equal(audit.length, 1, JSON.stringify(audit))
  assert.equal(audit[0]!.action, 'update_inbound_scope')
  assert.equal(audit[0]!.outcome, 'not_made')
  assert.equal(audit[0]!.level, 40)
  assert.match(String(audit[0]!.msg), /refused: the store wrote nothing/)
})
