// Finding: with GATE_LOG_RAW_PATH the decision log writes a path segment holding something
// token-shaped as `[token]`, but looked at the segment only as the canonical path keeps it, and
// that path keeps escapes Rails decodes once (`%2567lpat-...` is `%67lpat-...` to GitLab): a token
// whose first letter, or every character, was escaped twice was not recognised, and was written
// with its secret part in clear (`%2567ldt-<secret>`) or as its own percent-encoding. A segment
// is now also looked at with its escapes decoded (again while any is left, a few rounds).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { loggedPath } from '../../src/text.ts'

const SECRET = 'pastedSecret0123456789'
const twice = (text: string): string => [...text].map(c => '%25' + c.charCodeAt(0).toString(16)).join('')

test('a token escaped in part or twice in a logged path is written [token]', async t => {
  const g = await startTestGate(t, { GATE_LOG_RAW_PATH: 'true' })
  const paths = [
    `/api/v4/projects/200/packages/generic/%2567lpat-${SECRET}/1.0/a.txt`,
    `/api/v4/projects/200/packages/generic/gl%2570at-${SECRET}/1.0/a.txt`,
    `/api/v4/projects/200/packages/generic/${twice(`gldt-${SECRET}`)}/1.0/a.txt`,
    `/api/v4/projects/200/packages/generic/%25252567lcbt-${SECRET}/1.0/a.txt`
  ]
  for (const path of paths) await send(g.url, 'GET', path, { 'job-token': TOKENS.app })
  const logged = g.logs.filter(l => l.msg === 'decision').map(l => l.path)
  assert.deepEqual(logged, Array(paths.length).fill('/api/v4/projects/200/packages/generic/[token]/1.0/a.txt'))
  const text = g.logs.map(l => JSON.stringify(l)).join('\n')
  assert.ok(!text.includes(SECRET.slice(0, 8)) && !text.includes(twice(SECRET.slice(0, 4))), text)
  // Escapes of no token are written as they are.
  assert.equal(loggedPath('/api/v4/projects/acme%2Flib/packages/generic/a%2520b/1.0/%25zz'), '/api/v4/projects/acme%2Flib/packages/generic/a%2520b/1.0/%25zz')
})
