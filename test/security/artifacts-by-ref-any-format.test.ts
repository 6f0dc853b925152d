// Finding: GitLab declares the artifacts archive by ref (`jobs/artifacts/:ref_name/download`,
// `ref_name: /.+/`) before the file by ref (`.../:ref_name/raw/*artifact_path`), and its API's two
// content types let the archive's route take any format: `jobs/artifacts/x/raw/y/download.xml`
// (or `.txt`, `%2Exml`, `.%2E`) is the archive of ref `x/raw/y`. The gate read only `/download` and
// `/download.json` as the archive, so it decided that path as the file `y/download.xml` of ref
// `x`, whose route lists public project features (`repository`, `builds`) where the archive's
// lists none: a job outside an internal or public project's allowlist was let through to the
// archive GitLab's own rules refuse it. Any format after `/download` is now the archive.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const PREFIX = '/api/v4/projects/200/jobs/artifacts/x/raw/y'
const ARCHIVES = ['download.xml', 'download.txt', 'download%2Exml', 'download.%2E', 'download.a%2Eb', 'download.json', 'download']

test('the archive by ref with any format is decided as the archive, not as a file of the ref before /raw/', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  // acme/lib is internal with every feature enabled; other/tools' job is not on its allowlist.
  g.gitlab.projects.get(200)!.visibility = 'internal'
  // A file of the ref passes the policy check by the project's features, as in GitLab, and is
  // refused after it (its artifacts may be kept to developers): the not-allowlisted message.
  const file = await send(g.url, 'GET', `${PREFIX}/dist/app.js?job=build`, { 'job-token': TOKENS.tools })
  assert.equal(file.status, 403, file.text)
  assert.equal(file.json().code, 'NOT_ALLOWLISTED')
  for (const last of ARCHIVES) {
    const target = `${PREFIX}/${last}?job=build`
    const before = g.seen.length
    const proxied = await send(g.url, 'GET', target, { 'job-token': TOKENS.tools })
    assert.equal(proxied.status, 403, `proxy: GET ${target}: ${proxied.text}`)
    // The archive's route lists no features: the policy check refuses it.
    assert.equal(proxied.json().code, 'MISSING_POLICIES', `proxy: GET ${target}: ${proxied.text}`)
    assert.equal(g.seen.length, before, `proxy: GET ${target} reached GitLab`)
    const envoy = await send(auth, 'GET', target, { 'job-token': TOKENS.tools })
    assert.equal(envoy.status, 403, `forward-auth: GET ${target}: ${envoy.text}`)
    // The job's own project's archive is the job's to read.
    const own = await send(g.url, 'GET', target, { 'job-token': TOKENS.lib })
    assert.equal(own.status, 200, `proxy, own project: GET ${target}: ${own.text}`)
  }
})
