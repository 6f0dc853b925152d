// Finding: a GATE_JWT_KEY file that is not valid JSON (a wrong file named, one cut short) stopped
// the start with a stack trace whose message was V8's, which quotes the text around the error:
// a token the file held beside it was printed. A file that is no PEM public key also stopped it
// with a stack trace and exit 1, not the one line naming the setting every other setting gets.
// Both are now one line naming GATE_JWT_KEY and the file, exit 2, the file's text never quoted.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serveOutcome } from '../helpers/serve.ts'

const SECRET = 'glpat-S3cretBesideTheKeys'

for (const [what, name, text, message] of [
  ['a JWKS file that is not JSON', 'keys.json', `{"keys": [], "token": ${SECRET}}`, /^job-token-gate: GATE_JWT_KEY: JWKS file .*keys\.json is not valid JSON$/],
  ['a JWKS file that is no key set', 'keys.json', `{"token": "${SECRET}"}`, /^job-token-gate: GATE_JWT_KEY: JWKS file .*keys\.json cannot be used: /],
  ['a file that is no PEM public key', 'key.pem', `token=${SECRET}\n`, /^job-token-gate: GATE_JWT_KEY: verification key is not a PEM public key/]
] as const) {
  test(`serve with ${what} as GATE_JWT_KEY: one line naming the setting, exit 2, the file's text never printed`, async t => {
    const dir = mkdtempSync(join(tmpdir(), 'gate-jwt-key-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const file = join(dir, name)
    writeFileSync(file, text)
    const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_JWT_KEY: file })
    assert.equal(outcome.kind, 'refused', 'serve started')
    const { code, stderr } = outcome as { code: number | null, stderr: string }
    assert.equal(code, 2, stderr)
    assert.equal(stderr.trimEnd().split('\n').length, 1, `one line, no stack trace:\n${stderr}`)
    assert.match(stderr.trimEnd(), message)
    assert.ok(!stderr.includes(SECRET.slice(0, 10)), stderr)
  })
}
