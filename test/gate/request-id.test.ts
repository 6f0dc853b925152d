// Request ids the gate makes: unique per request, with a random prefix per process (so two
// replicas, or a restarted gate, do not repeat each other's ids), and of the form a front proxy's
// X-Request-Id must have to be kept.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { newRequestId } from '../../src/gate/request.ts'
import { GATE_REQUEST_ID as FORM } from '../helpers/gate.ts'

test('request ids are new on every call and share the process prefix', () => {
  const ids = Array.from({ length: 10_000 }, () => newRequestId())
  assert.equal(new Set(ids).size, ids.length)
  for (const id of ids) assert.match(id, FORM)
  assert.equal(new Set(ids.map(id => id.slice(0, 16))).size, 1)
})

test('another process starts from another random prefix', () => {
  const other = execFileSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/gate/request.ts').then(m => process.stdout.write(m.newRequestId()))"]).toString()
  assert.match(other, FORM)
  assert.notEqual(other.slice(0, 16), newRequestId().slice(0, 16))
})
