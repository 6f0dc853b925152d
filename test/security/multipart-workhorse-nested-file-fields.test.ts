// Workhorse writes, in place of a file part it stores, fields named `<name>.name` (the filename),
// `<name>.path`... (rewrite.go, handleFilePart), and Rack reads those names as it reads any: a
// bracket nests. A file part named `access_token[` is written `access_token[.name`, which Rails
// reads as `access_token` = `{".name" => <filename>, ".path" => ...}`; `job_token]` and
// `private_token[x` likewise. The gate read the part's content under that credential name, never
// its filename: a job token of a project off the target's allowlist sent as the filename, with an
// empty content, passed unread beside a Developer's header token. Such a file part is now refused
// as one whose fields Rack reads under another name.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { multipartPieces, refusedWholeAndStreamed } from '../helpers/multipart-body.ts'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { requireRack } from '../rack/rack-available.ts'

const B = 'workhorse-nested-file-fields-boundary'
// other/tools (300) is not on acme/lib's (200) allowlist.
const LIB_UPLOAD = '/api/v4/projects/200/packages/pypi'
const DEVELOPER = 'glpat-lib-developer-0000000000'
const users = { [DEVELOPER]: { id: 51, username: 'dev', access: { 200: 30 } } }
const { part, end, type } = multipartPieces(B)

/** File part names whose Workhorse fields Rack nests under a credential parameter. */
const NAMES: ReadonlyArray<readonly [string, string]> = [['access_token[', 'access_token'], ['job_token]', 'job_token'], ['private_token[x', 'private_token']]

const upload = (name: string): Buffer => Buffer.concat([
  part(['Content-Disposition: form-data; name="name"'], 'pkg'),
  part([`Content-Disposition: form-data; name="${name}"; filename="${TOKENS.tools}"`, 'Content-Type: application/octet-stream'], ''),
  end
])

test('Rails, reading the fields Workhorse writes for such a file part, finds the filename under a credential name', async t => {
  if (!requireTool(t, goUnavailable()) || !requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const readings = goMultipart(NAMES.map(([name]) => ({ boundary: B, body: upload(name) })))
  for (const [i, [name, param]] of NAMES.entries()) {
    assert.equal(readings[i]!.error, undefined, name)
    const rails = await oracle.ask({ method: 'POST', target: LIB_UPLOAD, headers: [['Content-Type', type['content-type']]], body: readings[i]!.rewritten })
    assert.ok(rails.creds.some(([where, value]) => where === `body:${param}` && value === TOKENS.tools), `${name}: Rack read ${JSON.stringify(rails.creds)}`)
  }
})

for (const [name] of NAMES) {
  test(`a file part named ${name}: refused buffered and streamed; nothing reaches the upstream`, async t => {
    const g = await startTestGate(t, {}, { users })
    const body = upload(name)
    await refusedWholeAndStreamed(g, LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, body, 'MULTIPART_PART_NAME_AMBIGUOUS')
  })
}
