// What GitLab's GraphqlController runs, against the gate's readings of the same request: the
// oracle (test/helpers/graphql-controller-oracle.rb) reads a generated request with the Ruby
// libraries GitLab reads it with (Rack::MethodOverride, Apollo's upload middleware,
// ActionDispatch's parameters, the controller's `permit` and batch rule) and with the token
// finders' order, and again without Rack::MethodOverride (the only reader of an untyped POST
// body, so a stack without it reads only the URL's parameters there). For every request either
// stack reads without raising and the gate does not refuse as unreadable, the operations GitLab
// runs must be one of the gate's readings (graphqlReadings), and the token GitLab takes first
// the one the gate found, or the gate must refuse the request as holding several. Test-only
// shapes: URL and body parameters of every GraphQL and token name, with Rack's spellings, JSON
// objects and batches with values of every JSON type, forms, multipart bodies, bare documents,
// Content-Types GitLab parses and ones it does not, and none at all. A failure prints the seed;
// GRAPHQL_CONTROLLER_SEED and GRAPHQL_CONTROLLER_RUNS replay it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { graphqlReadings, normalizeVariables, readGraphqlParams, type GraphqlOperation } from '../../src/admin/graphql.ts'
import { findGraphqlToken } from '../../src/admin/graphql-credentials.ts'
import { prng } from '../helpers/prng.ts'
import { propertyRun } from '../helpers/property-run.ts'
import { railsUnavailable } from '../helpers/rails-routes.ts'
import { requireTool } from '../helpers/require-tool.ts'

const ORACLE = fileURLToPath(new URL('../helpers/graphql-controller-oracle.rb', import.meta.url))
const DOCS = ['{a}', '{b}', 'query N {n}', 'x']
const q = encodeURIComponent
type Chooser = <T>(xs: readonly T[]) => T

interface Generated { readonly method: string, readonly target: string, readonly headers: Array<[string, string]>, readonly body: Buffer }

function generate (pick: Chooser, chance: (p: number) => boolean): Generated {
  const url: string[] = []
  for (let i = pick([0, 1, 2, 3]); i > 0; i--) {
    url.push(pick([
      `query=${q(pick(DOCS))}`, `operationName=${pick(['N', '', 'M'])}`, `variables=${q(pick(['{"v":1}', '', '"{\\"v\\":2}"', '[1]']))}`,
      'variables[v]=3', `_json[][query]=${q(pick(DOCS))}`, '_json[]', '_json=x',
      `operations=${q(pick(['{"query":"{op}"}', '[{"query":"{opb}"}]', '{"private_token":"T9"}', 'null', '"s"']))}`, `map=${q(pick(['{}', '[]', '']))}`,
      `private_token=${pick(['T1', '', 'T2'])}`, 'access_token=T3', 'bearer_token=T4', 'private_token]=T5',
      `query[]=${q('{d}')}`, `query]=${q('{e}')}`, `[query]=${q('{f}')}`, `+query=${q('{g}')}`, `quer%79=${q('{h}')}`, 'query'
    ]))
  }
  const target = '/api/graphql' + (url.length > 0 ? '?' + url.join(pick(['&', ';', '; '])) : '')
  const object = (): Record<string, unknown> => {
    const o: Record<string, unknown> = {}
    if (chance(0.8)) o.query = pick([...DOCS, 1, null, ['{z}'], { a: 1 }, true])
    if (chance(0.3)) o.operationName = pick(['N', '', null, 1, true, ['N']])
    if (chance(0.3)) o.variables = pick([{ v: 1 }, '{"v":5}', '', null, [1], 'x', { v: [null, 1] }])
    if (chance(0.2)) o.private_token = pick(['T6', '', 7, null])
    if (chance(0.15)) o._json = pick([[{ query: '{j}' }], [], [null], 'x', [{ query: '{k}' }, 'y']])
    if (chance(0.15)) { o.operations = pick(['{"query":"{op2}"}', '[{"query":"{op3}"}]', '{"_json":[{"query":"{op4}"}]}']); o.map = pick(['{}', '[]', '']) }
    return o
  }
  const part = (name: string, value: string): string => `--BB\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  let body = ''
  let type: string | null = null
  switch (pick(['json', 'batch', 'form', 'multipart', 'text', 'none', 'string'])) {
    case 'json':
      body = JSON.stringify(object())
      type = pick(['application/json', 'application/json; charset=utf-8', 'application/vnd.git-lfs+json', 'APPLICATION/JSON', 'Application/Json;Charset=UTF-8', 'application/json , text/plain', 'application/json; x=multipart/form-data', 'text/plain', 'text/plain;multipart/form-data', 'text/x-json', 'application/foo+json', 'application/graphql', 'application/x-www-form-urlencoded', null])
      break
    case 'batch':
      // Ruby's JSON skips comments, which JSON.parse refuses.
      body = JSON.stringify(pick([[object()], [object(), object()]])) + (chance(0.2) ? ' /* c */' : '')
      type = pick(['application/json', 'text/plain', null])
      break
    case 'string':
      body = JSON.stringify(pick(DOCS))
      type = 'application/json'
      break
    case 'form': {
      const fields: string[] = []
      for (let i = pick([1, 2, 3]); i > 0; i--) fields.push(pick([`query=${q(pick(DOCS))}`, 'operationName=N', `variables=${q('{"v":9}')}`, 'variables[p]=acme/lib', `_json[][query]=${q('{fj}')}`, 'private_token=T7', `operations=${q('{"query":"{fo}"}')}&map=%7B%7D`]))
      // Rack's #POST drops a NUL that ends a form body.
      body = fields.join(pick(['&', ';'])) + (chance(0.15) ? '\0' : '')
      type = pick(['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'APPLICATION/X-WWW-FORM-URLENCODED', 'application/x-www-form-urlencoded; multipart/form-data', 'multipart/form-data', null])
      break
    }
    case 'multipart': {
      const parts: string[] = []
      for (let i = pick([1, 2, 3]); i > 0; i--) {
        parts.push(pick([
          part('query', pick(DOCS)), part('operations', pick(['{"query":"{mo}"}', '[{"query":"{mb}"}]', '{"query":"{mo2}","variables":{"v":1}}'])),
          part('map', pick(['{}', '[]'])), part('operationName', 'N'), part('private_token', 'T8'), part('_json[][query]', '{mj}')
        ]))
      }
      body = parts.join('') + '--BB--\r\n'
      type = pick(['multipart/form-data; boundary=BB', 'multipart/mixed; boundary=BB', 'multipart/related; boundary=BB'])
      break
    }
    case 'text':
      body = pick(DOCS)
      type = pick(['application/graphql', 'text/plain', null])
      break
  }
  const headers: Array<[string, string]> = []
  if (type !== null) headers.push(['content-type', type])
  if (chance(0.3)) headers.push(['private-token', pick(['H1', 'T1'])])
  const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`
  if (chance(0.2)) headers.push(['authorization', pick(['Bearer B1', 'Bearer T1', basic('u:BP'), basic('gitlab-ci-token:BP'), basic('gitlab-ci-token:T1'), basic('u:')])])
  if (chance(0.1)) headers.push(['job-token', 'J1'])
  return { method: pick(['POST', 'POST', 'POST', 'GET']), target, headers, body: Buffer.from(body) }
}

/** An operation as both sides run it: nils out of arrays (Rails' deep munge), names as strings. */
function runs (ops: ReadonlyArray<Pick<GraphqlOperation, 'query' | 'variables' | 'operationName'> | Record<string, unknown>>): string[] {
  const munged = (v: unknown): unknown => Array.isArray(v)
    ? v.filter(x => x !== null).map(munged)
    : v !== null && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map(k => [k, munged((v as Record<string, unknown>)[k])])) : v
  return ops.flatMap(op => {
    const query = op.query === null || op.query === undefined ? '' : String(op.query)
    // GitLab runs nothing for an operation without a document.
    if (query.trim() === '') return []
    const name = op.operationName === null || op.operationName === undefined || op.operationName === '' ? null : String(op.operationName)
    return [JSON.stringify({ query, name, variables: munged(normalizeVariables(op.variables)) })]
  })
}

test('GraphQL requests: what GitLab\'s controller runs, and the token it takes, is one of the gate\'s readings', t => {
  if (!requireTool(t, railsUnavailable())) return
  const apollo = spawnSync('ruby', ['-e', 'require "apollo_upload_server/middleware"'], { encoding: 'utf8' })
  if (!requireTool(t, apollo.status === 0 ? null : 'ruby cannot load apollo_upload_server; install the Debian package ruby-apollo-upload-server')) return
  const { seed, numRuns } = propertyRun(t, 'GRAPHQL_CONTROLLER', 1_500)
  const random = prng(seed)
  const pick: Chooser = xs => xs[Math.floor(random() * xs.length)]!
  const requests = Array.from({ length: numRuns }, () => generate(pick, p => random() < p))
  const input = requests.map(r => JSON.stringify({ m: r.method, t: r.target, h: r.headers, b: r.body.toString('base64') })).join('\n') + '\n'
  type Answer = { error?: string, batch: boolean, ops: Array<Record<string, unknown>>, token: string | null }
  // GitLab's stack, and the same without Rack::MethodOverride (the only reader of an untyped
  // POST body): the gate's readings must hold what either runs.
  const stacks = Object.entries({ 'with Rack::MethodOverride': [], 'without Rack::MethodOverride': ['--without-method-override'] }).map(([name, args]) => {
    const run = spawnSync('ruby', ['-W0', ORACLE, ...args], { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
    assert.equal(run.status, 0, run.stderr)
    const answers = run.stdout.trim().split('\n').map(line => JSON.parse(line) as Answer)
    assert.equal(answers.length, requests.length)
    return { name, answers }
  })
  let compared = 0
  const problems: string[] = []
  requests.forEach((r, i) => {
    const type = r.headers.find(([name]) => name === 'content-type')?.[1] ?? ''
    const params = readGraphqlParams(r.body, { method: r.method, query: r.target.includes('?') ? r.target.slice(r.target.indexOf('?') + 1) : '', contentType: type, bodyReadable: true })
    // Refused whatever the token: nothing is forwarded. A JSON body only Ruby's parser reads
    // (unparsedBody) is refused beside the gate's fields and for a fine-grained token.
    if (params.unreadable !== null || params.doubtful.length > 0 || params.unparsedBody) return
    const request = `${r.method} ${r.target} ${JSON.stringify(r.headers)} ${JSON.stringify(r.body.toString())}`
    const token = findGraphqlToken({ headers: Object.fromEntries(r.headers), rawHeaders: r.headers.flat() }, params)
    const readings = graphqlReadings(params).map(reading => JSON.stringify({ batch: reading.batch, ops: runs(reading.operations) }))
    for (const { name, answers } of stacks) {
      const gitlab = answers[i]!
      if (gitlab.error !== undefined) continue
      compared++
      if (gitlab.token !== null && token.kind !== 'ambiguous' && !(token.kind === 'token' && token.token === gitlab.token)) problems.push(`${request}: GitLab ${name} takes the token ${gitlab.token}, the gate ${JSON.stringify(token)}`)
      const ran = runs(gitlab.ops)
      if (ran.length === 0) continue
      const want = JSON.stringify({ batch: gitlab.batch, ops: ran })
      if (!readings.includes(want)) problems.push(`${request}: GitLab ${name} runs ${want}, the gate reads ${readings.join(' | ')}`)
    }
  })
  assert.ok(compared > numRuns, `only ${compared} of ${numRuns * 2} readings compared`)
  assert.deepEqual(problems.slice(0, 5), [], `seed ${seed}: ${problems.length} requests read otherwise`)
})
