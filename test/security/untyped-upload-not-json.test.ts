// Regression: a PUT body sent without a Content-Type that starts like a JSON object (`{`, or `/`)
// but is no JSON document was refused (400 BODY_NOT_PARSEABLE) on every route. GitLab parses such
// a body as JSON only in the APIs that declare `default_format :json` (NuGet, PyPI, Composer,
// Cargo, Terraform state); elsewhere Workhorse takes it as the upload or Grape refuses it, and on
// `authenticate_with` routes no credential is read from a body at all, which is why forward-auth
// lets the same requests through. Real uploads were refused through the gate as a proxy: `curl
// --upload-file` of a JSON Lines file to the generic registry, and `cargo publish` whenever its
// body's first byte (the low byte of the metadata's length, little-endian) is `{` or `/`. Where
// GitLab does not parse such a body, one that turns out not to be JSON now passes on unread; a
// credential found before that is still decided, and the JSON APIs still refuse what they cannot parse.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex')
const job = { 'job-token': TOKENS.lib }

/** cargo publish's body: metadata JSON and the .crate, each behind its u32 little-endian length. */
function cargoBody (metadataLength: number): Buffer {
  const metadata = Buffer.from(JSON.stringify({ name: 'hello', vers: '1.0.0', pad: '' }).padEnd(metadataLength, ' '))
  const crate = Buffer.from('\x1f\x8b\x08\x00 crate', 'latin1')
  const length = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
  return Buffer.concat([length(metadata.length), metadata, length(crate.length), crate])
}

test('an upload GitLab does not parse as JSON passes even when it starts like JSON', async t => {
  const g = await startTestGate(t)
  const uploads: Array<[string, string, Record<string, string>, Buffer]> = [
    ['generic: JSON Lines', '/api/v4/projects/200/packages/generic/logs/1.0.0/run.jsonl', job, Buffer.from('{"step":1}\n{"step":2}\n')],
    ['generic: JSON with comments and a trailing comma', '/api/v4/projects/200/packages/generic/cfg/1.0.0/tsconfig.json', job, Buffer.from('// config\n{"a": 1,}\n')],
    ['maven: a .json file of another kind', '/api/v4/projects/200/packages/maven/com/example/app/1.0/app-1.0.json', job, Buffer.from('{not json}')],
    ['cargo publish, metadata of 379 bytes', '/api/v4/projects/200/packages/cargo/api/v1/crates/new', { authorization: `Bearer ${TOKENS.lib}` }, cargoBody(379)],
    ['cargo publish, metadata of 303 bytes', '/api/v4/projects/200/packages/cargo/api/v1/crates/new', { authorization: `Bearer ${TOKENS.lib}` }, cargoBody(303)]
  ]
  for (const [name, path, headers, body] of uploads) {
    const res = await send(g.url, 'PUT', path, headers, body)
    assert.equal(res.status, 200, `${name}: ${res.text}`)
    assert.equal(g.seen.at(-1)?.sha256, sha256(body), `${name}: forwarded byte for byte`)
  }
})

test('a credential before the point the body stops being JSON is still decided; JSON APIs still refuse what they cannot parse', async t => {
  const g = await startTestGate(t)
  const other = await send(g.url, 'PUT', '/api/v4/projects/200/packages/generic/logs/1.0.0/run.jsonl', job, `{"job_token":"${TOKENS.tools}"}\n{"step":2}\n`)
  assert.equal(other.status, 401, other.text)
  assert.equal(other.json().code, 'CREDENTIAL_AMBIGUOUS')
  // The Terraform state API parses an untyped body as JSON: a body it cannot parse is refused
  // there, as GitLab refuses it.
  const lock = await send(g.url, 'DELETE', '/api/v4/projects/200/terraform/state/prod/lock', { authorization: `Basic ${Buffer.from(`gitlab-ci-token:${TOKENS.lib}`).toString('base64')}` }, '{"ID": "x",}')
  assert.equal(lock.status, 400, lock.text)
  assert.equal(lock.json().code, 'BODY_NOT_PARSEABLE')
})
