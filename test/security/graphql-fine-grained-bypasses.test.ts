// Regressions: ways a fine-grained personal access token's GraphQL request could run something
// the gate did not check. Each was found while building the enforcement at /api/graphql and is
// refused (or checked) now.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { rawRequest } from '../helpers/http.ts'
import { parse, print } from 'graphql'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const pat = { 'private-token': 'glpat-lib-reader' }
const OTHER = '{ project(fullPath: "other/tools") { id } }'
const OWN = '{ project(fullPath: "acme/lib") { id } }'

test('HEAD /api/graphql?query= runs the query in GitLab (Rails routes HEAD as GET): checked like GET', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${g.url}/api/graphql?query=${encodeURIComponent(OTHER)}`, { method: 'HEAD', headers: pat }, res => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  })
  assert.equal(status, 200)
  assert.equal(g.upstream.length, 0, 'refused, not forwarded')
})

test('Rack 2 splits the query string on ";" too: a query hidden after one is checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const hidden = await postGraphql(g.url, { query: OWN }, pat, `/api/graphql?x=1;query=${encodeURIComponent(OTHER)}`)
  assert.equal(hidden.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(g.upstream.length, 0)
})

test('the URL\'s parameters override the body\'s: a harmless body cannot cover the URL\'s query', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const covered = await postGraphql(g.url, { query: OWN }, pat, `/api/graphql?query=${encodeURIComponent(OTHER)}`)
  assert.equal(covered.body.errors[0].extensions.target, 'project other/tools')
  assert.equal(g.upstream.length, 0)
})

test('a body GitLab may read two ways (JSON sent as text/plain) is checked under both readings', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const text = await postGraphql(g.url, JSON.stringify({ query: OTHER }), { ...pat, 'content-type': 'text/plain' })
  assert.equal(text.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(g.upstream.length, 0)
})

test('a token in a body parameter, a form body, or Basic is found as GitLab finds it', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const form = await postGraphql(g.url, `query=${encodeURIComponent(OTHER)}&private_token=glpat-lib-reader`, { 'content-type': 'application/x-www-form-urlencoded' })
  assert.equal(form.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  const basic = await postGraphql(g.url, { query: OTHER }, { authorization: `Basic ${Buffer.from('someone:glpat-lib-reader').toString('base64')}` })
  assert.equal(basic.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  const url = await postGraphql(g.url, { query: OTHER }, {}, '/api/graphql?access_token=glpat-lib-reader')
  assert.equal(url.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(g.upstream.length, 0)
})

test('a newline inside a string is read as graphql-ruby reads it (escape_single_quoted_newlines), not as a parse error that passes', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const doc = '{ project(fullPath: "other/tools") { id name } a: project(fullPath: "x\ny") { id } }'
  const answer = await postGraphql(g.url, { query: doc }, pat)
  assert.equal(answer.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(g.upstream.length, 0)
})

/**
 * A document as graphql-ruby 2.2 and later lexes its comments (GitLab's parser): a `#` comment
 * runs to the next LF, through any CR. (Enough for these documents, whose only `#` start comments
 * to Ruby; Debian's graphql-ruby 1.13 ends a comment at CR, as graphql-js does, so GitLab's
 * reading cannot be run here.)
 */
const asGitlabReads = (doc: string): string => doc.replace(/#[^\n]*/g, '')

/**
 * Each document is refused as one GitLab would read otherwise (checked with `premise` first),
 * nothing reaches GitLab, and `alike`, which both read the same, is forwarded.
 */
async function refusedAsAmbiguous (t: TestContext, documents: readonly string[], alike: string, premise: (doc: string) => void = () => {}): Promise<void> {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const doc of documents) {
    premise(doc)
    const answer = await postGraphql(g.url, { query: doc }, pat)
    assert.equal(answer.status, 200, answer.text)
    assert.equal(answer.body.errors?.[0]?.extensions?.code, 'GRAPHQL_DOCUMENT_AMBIGUOUS', `${JSON.stringify(doc)}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, 0)
  const same = await postGraphql(g.url, { query: alike }, pat)
  assert.equal(same.status, 200, same.text)
  assert.equal(g.upstream.length, 1, same.text)
}

test('a comment GitLab reads on past a carriage return cannot hide from the gate what GitLab runs', async (t) => {
  await refusedAsAmbiguous(t, [
    // The gate read fullPath twice and kept the last; GitLab reads it once.
    '{ project(fullPath: "other/tools" #\r, fullPath: "acme/lib"\n) { id } }',
    // The gate read a block string where GitLab reads a field.
    '#\r{ a: project(fullPath: "acme/lib", note: """\n{ b: project(fullPath: "other/tools") { id } } #""") { id } }'
  ],
  // Comments ended by CRLF, or by CR with nothing but white space before the LF, read alike.
  '{ # mine\r\n project(fullPath: "acme/lib") { id } # end\r  \n}',
  doc => assert.match(print(parse(asGitlabReads(doc))), /project\(fullPath: "other\/tools"\)/, 'what GitLab would run'))
})

test('a block string graphql-ruby would end elsewhere (an escaped """, more quotes after it) is refused, not read one way', async (t) => {
  await refusedAsAmbiguous(t, [
    '{ project(fullPath: "acme/lib", note: """\\"""" ) { id } other: project(fullPath: "other/tools") { id } x: project(fullPath: "acme/lib", m: """) { id } }',
    '{ project(fullPath: "acme/lib", notes: ["""a""""" ]) { id } }'
  ], '{ project(fullPath: "acme/lib", note: """say "hi" and \\\\ bye""") { id } }')
})

test('a repeated argument is refused as GitLab\'s validation refuses it: the gate never checks one fullPath of two', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const doc of ['{ project(fullPath: "other/tools", fullPath: "acme/lib") { id } }', 'query($p: ID = "other/tools", $p: ID = "acme/lib") { project(fullPath: $p) { id } }']) {
    const answer = await postGraphql(g.url, { query: doc }, pat)
    assert.equal(answer.body.errors?.[0]?.extensions?.code, 'GRAPHQL_DOCUMENT_INVALID', `${doc}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, 0)
})

test('a large upload cannot carry, after its files, a token or a GraphQL parameter the gate did not decide from', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const B = '----late-7e1'
  const part = (name: string, value: string): string => `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  const body = (late: string): Buffer => Buffer.concat([
    Buffer.from(part('operations', JSON.stringify({ query: '{ __typename }' })) + part('map', '{}') + `--${B}\r\nContent-Disposition: form-data; name="0"; filename="f.bin"\r\n\r\n`),
    Buffer.alloc(2 << 20, 0x61),
    Buffer.from(`\r\n${late}--${B}--\r\n`)
  ])
  for (const late of [part('access_token', 'glpat-lib-reader'), part('_json[][query]', OTHER), part(' variables[p]', 'other/tools')]) {
    const answer = await postGraphql(g.url, body(late), { 'content-type': `multipart/form-data; boundary=${B}` })
    assert.equal(answer.status, 400, late)
    assert.equal(answer.body.code, 'GRAPHQL_LATE_PARAMETER')
  }
  assert.equal(g.upstream.length, 0, 'GitLab never had any of them whole')
})

test('an empty batch ([] as the body) is no batch for GitLab: the URL\'s query runs, and is checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_ADMIN_TOKEN: 'gate-operator-secret' } })
  const hidden = await postGraphql(g.url, '[]', pat, `/api/graphql?query=${encodeURIComponent(OTHER)}`)
  assert.equal(hidden.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  // The same shape carried an allowlist mutation past the classifier to GitLab: it is the gate's now.
  const mutation = 'mutation { ciJobTokenScopeAddProject(input: { projectPath: "acme/lib", targetProjectPath: "other/tools" }) { errors } }'
  const gateOp = await postGraphql(g.url, '[]', {}, `/api/graphql?query=${encodeURIComponent(mutation)}`)
  assert.equal(gateOp.status, 401, 'answered by the gate (no caller), not forwarded')
  assert.equal(g.upstream.length, 0)
})

test('a variable named __proto__ carries its value to the target, not to an object\'s prototype', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const answer = await postGraphql(g.url, '{"query":"query($__proto__: ID!) { project(fullPath: $__proto__) { id } }","variables":{"__proto__":"other/tools"}}', pat)
  assert.equal(answer.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', answer.text)
  assert.equal(answer.body.errors[0].extensions.target, 'project other/tools')
  assert.equal(g.upstream.length, 0)
})

test('a token in Private_Token (Puma reads it as PRIVATE-TOKEN) is checked as one, small body or large', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_MAX_INSPECTED_BODY_BYTES: String(4 << 20) } })
  for (const name of ['Private_Token', 'PRIVATE_TOKEN']) {
    const small = await postGraphql(g.url, { query: OTHER }, { [name]: 'glpat-lib-reader' })
    assert.equal(small.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${name}: ${small.text}`)
  }
  // Over 1 MiB the body is decided from its first bytes only when a token may be there.
  const large = await postGraphql(g.url, { query: OTHER, variables: { pad: 'x'.repeat(2 << 20) } }, { Private_Token: 'glpat-lib-reader' })
  assert.equal(large.status, 413, large.text)
  const own = await postGraphql(g.url, { query: OWN }, { Private_Token: 'glpat-lib-reader' })
  assert.equal(own.status, 200)
  assert.equal(g.upstream.length, 1, 'only the allowed query was forwarded')
})

test('a token split over two Authorization lines (Puma joins them, Base64 skips the ", ") is refused, not forwarded unchecked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  // "Basic dTpnbHBh, dC1saWItcmVhZGVy" is u:glpat-lib-reader to Rails; Node keeps the first line only.
  const body = JSON.stringify({ query: OTHER })
  const answer = await rawRequest(Number(new URL(g.url).port), ['POST /api/graphql HTTP/1.1', 'Content-Type: application/json', 'Authorization: Basic dTpnbHBh', 'Authorization: dC1saWItcmVhZGVy'], body)
  assert.equal(answer.status, 401, answer.body)
  assert.equal(JSON.parse(answer.body).code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal(g.upstream.length, 0)
})

test('a URL parameter named " query" (`+query=`) is not the query to Rails: the body\'s query is the one checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const name of ['+query', '%20query']) {
    const answer = await postGraphql(g.url, { query: OTHER }, pat, `/api/graphql?${name}=${encodeURIComponent('{ __typename }')}`)
    assert.equal(answer.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${name}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, 0)
})

test('a body GitLab does not parse cannot supply the variables the gate checks: the URL\'s query is checked with its defaults', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  // Without variables, $p is other/tools; the body names acme/lib, which the token may read.
  const doc = (target: string): string => `/api/graphql?query=${encodeURIComponent(`query($p: ID! = "${target}") { project(fullPath: $p) { id } }`)}`
  const own = JSON.stringify({ variables: { p: 'acme/lib' } })
  // GitLab's Rails parses JSON for application/json and application/vnd.git-lfs+json only
  // (its config/initializers/mime_types.rb), and Rack multipart/form-data, related and mixed.
  const B = 'alt-1'
  const unparsed: Array<[string, string]> = [
    ['text/x-json', own], ['application/jsonrequest', own], ['application/vnd.api+json', own],
    [`multipart/alternative; boundary=${B}`, `--${B}\r\nContent-Disposition: form-data; name="variables"\r\n\r\n{"p":"acme/lib"}\r\n--${B}--\r\n`]
  ]
  for (const [type, body] of unparsed) {
    const answer = await postGraphql(g.url, body, { ...pat, 'content-type': type }, doc('other/tools'))
    assert.equal(answer.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${type}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, 0)
  for (const type of ['application/json', 'application/vnd.git-lfs+json']) {
    assert.equal((await postGraphql(g.url, own, { ...pat, 'content-type': type }, doc('other/tools'))).body.data?.upstream, true, `${type} is parsed by GitLab`)
  }
  // Rack reads the media type before a ',' as well as a ';': this body is a form to GitLab.
  const form = await postGraphql(g.url, `variables=${encodeURIComponent('{"p":"other/tools"}')}`, { ...pat, 'content-type': 'application/x-www-form-urlencoded, text/plain' }, doc('acme/lib'))
  assert.equal(form.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', form.text)
  assert.equal(g.upstream.length, 2)
})
