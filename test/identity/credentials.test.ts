// Every way GitLab accepts a job token, and the ambiguity rule, on real HTTP requests through
// canonicalize → route → identity stage (docs/gitlab-rules.md, "Where GitLab reads credentials").

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { basic, identityFor, rawRequest, startStageServer, stubResolver, type StageReport } from './harness.ts'
import fc from 'fast-check'
import { collectCredentials, decideCredential, decodeFormComponent, findCredential, isCredentialParam, queryPairs } from '../../src/identity/credentials.ts'

const A = 'glcbt-64_AAAAaaaa1111aaaa'
const B = 'glcbt-64_BBBBbbbb2222bbbb'
/** A job token of a GitLab whose administrator set the instance token prefix `acme`. */
const P = 'acme-glcbt-64_PPPPpppp3333pppp'
const PAT = 'glpat-pppppppppppppppppppp'
const TRIGGER = 'glptt-tttttttttttttttttttt'

const MAVEN = '/api/v4/projects/42/packages/maven/com/example/app/1.0/app-1.0.jar'
const CONAN = '/api/v4/projects/42/packages/conan/v1/users/authenticate'
const PACKAGES = '/api/v4/projects/42/packages'

/** A Conan client's Bearer after `conan user`: GitLab's HMAC JWT whose access_token is the job token. */
function conanJwt (accessToken: string): string {
  const part = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${part({ typ: 'JWT', alg: 'HS256' })}.${part({ access_token: accessToken, user_id: 9, exp: 4102444800 })}.c2lnbmF0dXJl`
}

interface Case {
  readonly name: string
  readonly target: string
  readonly headers?: readonly string[]
  readonly method?: string
  /** Expected: the token and where it came from, 'none', or 'ambiguous'. */
  readonly expect: { token: string, source: string, basicAuth?: boolean } | 'none' | 'ambiguous'
}

const cases: Case[] = [
  // Headers
  { name: 'JOB-TOKEN header', target: PACKAGES, headers: [`JOB-TOKEN: ${A}`], expect: { token: A, source: 'header' } },
  { name: 'job-token header in lower case', target: PACKAGES, headers: [`job-token: ${A}`], expect: { token: A, source: 'header' } },
  { name: 'Job-Token header in mixed case', target: PACKAGES, headers: [`Job-Token: ${A}`], expect: { token: A, source: 'header' } },
  { name: 'JOB_TOKEN spelling (Rack reads it as JOB-TOKEN)', target: PACKAGES, headers: [`JOB_TOKEN: ${A}`], expect: { token: A, source: 'header' } },
  { name: 'JOB-TOKEN whatever it looks like', target: PACKAGES, headers: ['JOB-TOKEN: not-prefixed-token'], expect: { token: 'not-prefixed-token', source: 'header' } },
  { name: 'empty JOB-TOKEN is absent', target: PACKAGES, headers: ['JOB-TOKEN: '], expect: 'none' },
  { name: 'PRIVATE-TOKEN holding a job token is taken as one', target: PACKAGES, headers: [`PRIVATE-TOKEN: ${A}`], expect: { token: A, source: 'header' } },
  { name: 'PRIVATE_TOKEN spelling holding a job token', target: PACKAGES, headers: [`PRIVATE_TOKEN: ${A}`], expect: { token: A, source: 'header' } },
  { name: 'PRIVATE-TOKEN with a PAT alone is not our business', target: PACKAGES, headers: [`PRIVATE-TOKEN: ${PAT}`], expect: 'none' },
  { name: 'X-NuGet-ApiKey', target: PACKAGES, method: 'PUT', headers: [`X-NuGet-ApiKey: ${A}`], expect: { token: A, source: 'nuget' } },
  { name: 'X-NuGet-ApiKey with a PAT', target: PACKAGES, headers: [`X-NuGet-ApiKey: ${PAT}`], expect: 'none' },
  { name: 'Deploy-Token header holding a job token', target: PACKAGES, headers: [`Deploy-Token: ${A}`], expect: { token: A, source: 'header' } },
  // Authorization
  { name: 'Bearer job token', target: PACKAGES, headers: [`Authorization: Bearer ${A}`], expect: { token: A, source: 'bearer' } },
  { name: 'bearer scheme in lower case', target: PACKAGES, headers: [`Authorization: bearer ${A}`], expect: { token: A, source: 'bearer' } },
  { name: 'Bearer OAuth token alone', target: PACKAGES, headers: ['Authorization: Bearer oauth-access-token'], expect: 'none' },
  { name: 'Authorization without a scheme, job token', target: PACKAGES, headers: [`Authorization: ${A}`], expect: { token: A, source: 'bearer' } },
  // `http_bearer_token` routes take the last word of Authorization, whatever the scheme.
  { name: 'a job token as the last word after an unknown scheme', target: PACKAGES, headers: [`Authorization: Foo Bar ${A}`], expect: { token: A, source: 'bearer' } },
  { name: 'a job token as the last word after Token', target: PACKAGES, headers: [`Authorization: Token ${A}`], expect: { token: A, source: 'bearer' } },
  { name: 'a job token after an OAuth Bearer value is ambiguous', target: PACKAGES, headers: [`Authorization: Bearer oauth-access-token ${A}`], expect: 'ambiguous' },
  { name: 'Basic gitlab-ci-token on Maven', target: MAVEN, headers: [`Authorization: ${basic('gitlab-ci-token', A)}`], expect: { token: A, source: 'basic', basicAuth: true } },
  { name: 'Basic gitlab-ci-token with any secret', target: MAVEN, headers: [`Authorization: ${basic('gitlab-ci-token', 'legacy-unprefixed')}`], expect: { token: 'legacy-unprefixed', source: 'basic', basicAuth: true } },
  { name: 'BASIC scheme in upper case', target: MAVEN, headers: [`Authorization: BASIC ${Buffer.from(`gitlab-ci-token:${A}`).toString('base64')}`], expect: { token: A, source: 'basic', basicAuth: true } },
  { name: 'Basic, other user, job token password', target: MAVEN, headers: [`Authorization: ${basic('someone', A)}`], expect: { token: A, source: 'basic', basicAuth: true } },
  { name: 'Basic, job token as the user name', target: MAVEN, headers: [`Authorization: ${basic(A, '')}`], expect: { token: A, source: 'basic', basicAuth: true } },
  { name: 'Basic, other user, PAT on Maven', target: MAVEN, headers: [`Authorization: ${basic('someone', PAT)}`], expect: 'none' },
  // Rails decodes Basic with Ruby's Base64.decode64, which skips bytes outside the alphabet and stops at '=' inside a group.
  { name: 'Basic with a - before the base64 (decode64 skips it)', target: MAVEN, headers: [`Authorization: Basic -${Buffer.from(`gitlab-ci-token:${A}`).toString('base64')}`], expect: { token: A, source: 'basic', basicAuth: true } },
  { name: 'Basic with _ and spaces inside the base64', target: MAVEN, headers: [`Authorization: Basic ${Buffer.from(`gitlab-ci-token:${A}`).toString('base64').replace(/(.{8})/, '$1_ ')}`], expect: { token: A, source: 'basic', basicAuth: true } },
  { name: 'Basic with a = between whole groups (decode64 reads on)', target: MAVEN, headers: [`Authorization: Basic ${Buffer.from('gitlab-ci-to').toString('base64')}=${Buffer.from(`ken:${A}`).toString('base64')}`], expect: { token: A, source: 'basic', basicAuth: true } },
  { name: 'Basic, any user, on Conan: a job token', target: CONAN, headers: [`Authorization: ${basic('anything', 'opaque-secret')}`], expect: { token: 'opaque-secret', source: 'basic', basicAuth: true } },
  { name: 'Conan Bearer JWT carrying the job token', target: CONAN, headers: [`Authorization: Bearer ${conanJwt(A)}`], expect: { token: A, source: 'bearer' } },
  { name: 'Conan Bearer JWT carrying a PAT id', target: CONAN, headers: [`Authorization: Bearer ${conanJwt('12')}`], expect: 'none' },
  // Query
  { name: 'job_token query parameter', target: `${PACKAGES}?job_token=${A}`, expect: { token: A, source: 'query' } },
  { name: 'token query parameter', target: `${PACKAGES}?page=2&token=${A}`, expect: { token: A, source: 'query' } },
  { name: 'token query parameter with a trigger token', target: `${PACKAGES}?token=${TRIGGER}`, expect: 'none' },
  { name: 'access_token query parameter', target: `${PACKAGES}?access_token=${A}`, expect: { token: A, source: 'query' } },
  { name: 'bearer_token query parameter', target: `${PACKAGES}?bearer_token=${A}`, expect: { token: A, source: 'query' } },
  { name: "';' separates parameters as in Rails", target: `${PACKAGES}?page=1;job_token=${A}`, expect: { token: A, source: 'query' } },
  { name: 'space after a separator (Rack skips it)', target: `${PACKAGES}?page=1;%20job_token=${A}`, expect: { token: A, source: 'query' } },
  { name: 'percent-encoded parameter name', target: `${PACKAGES}?job%5Ftoken=${A}`, expect: { token: A, source: 'query' } },
  { name: 'percent-encoded value decoded once', target: `${PACKAGES}?job_token=glcbt-64%5Fabc%252F`, expect: { token: 'glcbt-64_abc%2F', source: 'query' } },
  { name: "'+' is a space", target: `${PACKAGES}?job_token=a+b`, expect: { token: 'a b', source: 'query' } },
  { name: 'array parameter job_token[]', target: `${PACKAGES}?job_token[]=${A}`, expect: { token: A, source: 'query' } },
  { name: 'job token in any parameter', target: `${PACKAGES}?search=${A}`, expect: { token: A, source: 'query' } },
  { name: 'nothing at all', target: PACKAGES, expect: 'none' },
  // Instance-prefixed job tokens (`<prefix>-glcbt-...`) are job tokens wherever `glcbt-...` is one.
  { name: 'prefixed job token as Bearer', target: PACKAGES, headers: [`Authorization: Bearer ${P}`], expect: { token: P, source: 'bearer' } },
  { name: 'prefixed job token without a scheme', target: PACKAGES, headers: [`Authorization: ${P}`], expect: { token: P, source: 'bearer' } },
  { name: 'prefixed job token as the last word after an unknown scheme', target: PACKAGES, headers: [`Authorization: Foo Bar ${P}`], expect: { token: P, source: 'bearer' } },
  { name: 'prefixed job token as a Basic password under another user', target: MAVEN, headers: [`Authorization: ${basic('someone', P)}`], expect: { token: P, source: 'basic', basicAuth: true } },
  { name: 'prefixed job token as the Basic user name', target: MAVEN, headers: [`Authorization: ${basic(P, '')}`], expect: { token: P, source: 'basic', basicAuth: true } },
  { name: 'prefixed job token in PRIVATE-TOKEN', target: PACKAGES, headers: [`PRIVATE-TOKEN: ${P}`], expect: { token: P, source: 'header' } },
  { name: 'prefixed job token in X-NuGet-ApiKey', target: PACKAGES, method: 'PUT', headers: [`X-NuGet-ApiKey: ${P}`], expect: { token: P, source: 'nuget' } },
  { name: 'prefixed job token in access_token', target: `${PACKAGES}?access_token=${P}`, expect: { token: P, source: 'query' } },
  { name: 'prefixed job token in bearer_token', target: `${PACKAGES}?bearer_token=${P}`, expect: { token: P, source: 'query' } },
  { name: 'prefixed job token in token', target: `${PACKAGES}?token=${P}`, expect: { token: P, source: 'query' } },
  { name: 'prefixed job token in private_token', target: `${PACKAGES}?private_token=${P}`, expect: { token: P, source: 'query' } },
  { name: 'prefixed job token in any parameter', target: `${PACKAGES}?search=${P}`, expect: { token: P, source: 'query' } },
  { name: 'Conan Bearer JWT carrying a prefixed job token', target: CONAN, headers: [`Authorization: Bearer ${conanJwt(P)}`], expect: { token: P, source: 'bearer' } },
  { name: 'a prefixed and a plain job token are ambiguous', target: `${PACKAGES}?access_token=${P}`, headers: [`JOB-TOKEN: ${A}`], expect: 'ambiguous' },
  { name: 'a PAT with an instance prefix is not a job token', target: PACKAGES, headers: ['Authorization: Bearer acme-glpat-pppppppppppppppppppp'], expect: 'none' },
  { name: 'unmatched route, header still read', target: `/api/v4/not/a/route`, headers: [`JOB-TOKEN: ${A}`], expect: { token: A, source: 'header' } },
  // Ambiguity: a job token next to a different credential
  { name: 'JOB-TOKEN and a PAT', target: PACKAGES, headers: [`JOB-TOKEN: ${A}`, `PRIVATE-TOKEN: ${PAT}`], expect: 'ambiguous' },
  { name: 'JOB-TOKEN and an OAuth Bearer', target: PACKAGES, headers: [`JOB-TOKEN: ${A}`, 'Authorization: Bearer oauth-access-token'], expect: 'ambiguous' },
  { name: 'JOB-TOKEN and another job token in the query', target: `${PACKAGES}?job_token=${B}`, headers: [`JOB-TOKEN: ${A}`], expect: 'ambiguous' },
  { name: 'Basic job token and a Deploy-Token', target: MAVEN, headers: [`Authorization: ${basic('gitlab-ci-token', A)}`, 'Deploy-Token: gldt-dddddddddddd'], expect: 'ambiguous' },
  { name: 'two different JOB-TOKEN headers', target: PACKAGES, headers: [`JOB-TOKEN: ${A}`, `JOB-TOKEN: ${B}`], expect: 'ambiguous' },
  { name: 'JOB-TOKEN and JOB_TOKEN differing', target: PACKAGES, headers: [`JOB-TOKEN: ${A}`, `JOB_TOKEN: ${B}`], expect: 'ambiguous' },
  { name: 'a second Authorization header Node would drop', target: MAVEN, headers: [`Authorization: ${basic('gitlab-ci-token', A)}`, `Authorization: Bearer ${PAT}`], expect: 'ambiguous' },
  { name: 'job token in the query and a trigger token', target: `${PACKAGES}?job_token=${A}&token=${TRIGGER}`, expect: 'ambiguous' },
  // The same token repeated is one credential
  { name: 'same token in header, query and Basic', target: `${MAVEN}?job_token=${A}`, headers: [`JOB-TOKEN: ${A}`, `Authorization: ${basic('gitlab-ci-token', A)}`], expect: { token: A, source: 'header', basicAuth: true } },
  { name: 'same JOB-TOKEN header twice', target: PACKAGES, headers: [`JOB-TOKEN: ${A}`, `JOB-TOKEN: ${A}`], expect: { token: A, source: 'header' } },
  { name: 'a PAT next to nothing job-like is not ambiguous', target: `${PACKAGES}?private_token=${PAT}`, headers: ['Authorization: Bearer oauth-access-token'], expect: 'none' }
]

test('credential forms on real requests', async (t) => {
  const known = Object.fromEntries([A, B, P, 'not-prefixed-token', 'legacy-unprefixed', 'opaque-secret', 'glcbt-64_abc%2F', 'a b'].map((tok, i) => [tok, identityFor(i + 1)]))
  const resolver = stubResolver(known)
  const server = await startStageServer({ resolver })
  t.after(() => server.close())

  for (const c of cases) {
    await t.test(c.name, async () => {
      const res = await rawRequest(server.port, [`${c.method ?? 'GET'} ${c.target} HTTP/1.1`, ...(c.headers ?? [])])
      if (c.expect === 'ambiguous') {
        assert.equal(res.status, 401, res.body)
        const body = JSON.parse(res.body) as { message: string, code: string }
        assert.equal(body.code, 'CREDENTIAL_AMBIGUOUS')
        assert.match(body.message, /more than one credential/)
        return
      }
      assert.equal(res.status, 200, res.body)
      const report = JSON.parse(res.body) as StageReport
      if (c.expect === 'none') {
        assert.equal(report.kind, 'none')
        return
      }
      assert.equal(report.kind, 'job')
      assert.equal(report.token, c.expect.token)
      assert.equal(report.source, c.expect.source)
      assert.equal(report.basicAuth, c.expect.basicAuth ?? false)
      assert.deepEqual(report.identity, known[c.expect.token])
    })
  }
})

test('ambiguity answers name where credentials were found, never the secrets', () => {
  const result = findCredential({
    canonical: { method: 'GET', path: '/api/v4/projects/1/packages', query: `job_token=${A}` },
    headers: { 'private-token': PAT },
    route: null
  })
  assert.equal(result.kind, 'ambiguous')
  assert.ok(result.kind === 'ambiguous')
  assert.deepEqual(result.sources.sort(), ['header:private-token', 'query:job_token'])
  assert.ok(!JSON.stringify(result).includes(PAT) && !JSON.stringify(result).includes(A))
})

test('Node-joined repeated headers are split into their values', () => {
  // What Node makes of `JOB-TOKEN: A` + `JOB-TOKEN: B` when rawHeaders are not passed.
  const found = collectCredentials({ canonical: { method: 'GET', path: '/', query: '' }, headers: { 'job-token': `${A}, ${B}` }, route: null })
  assert.deepEqual(found.map(c => c.secret), [A, B])
  assert.equal(decideCredential(found).kind, 'ambiguous')
})

test('array header values (IncomingHttpHeaders) are all read', () => {
  const found = collectCredentials({ canonical: { method: 'GET', path: '/', query: '' }, headers: { 'x-custom': ['a'], 'job_token': [A, A] } as never, route: null })
  assert.deepEqual(found.map(c => c.where), ['header:job-token', 'header:job-token'])
  assert.deepEqual(decideCredential(found), { kind: 'job_token', token: A, source: 'header', basicAuth: false })
})

test('parameter names are read as Rack reads them, with or without brackets and leading spaces (generated names)', () => {
  // Rack: leading spaces and brackets skipped, the name cut at the first bracket.
  const rack = (name: string): string => /^[\s[\]]*([^[\]]*)/.exec(name)![1]!
  const names = ['job_token', 'token', 'private_token', 'access_token', 'bearer_token']
  fc.assert(fc.property(
    fc.constantFrom(...names, 'job', 'x', '_token', 'JOB_TOKEN', '9token'),
    fc.array(fc.constantFrom(' ', '\t', '[', ']', '\u00a0'), { maxLength: 3 }),
    fc.array(fc.constantFrom('[', ']', '[]', '[x]', ' ', 'a'), { maxLength: 2 }),
    (name, before, after) => {
      const raw = before.join('') + name + after.join('')
      assert.equal(isCredentialParam(raw), names.includes(rack(raw)), raw)
    }
  ), { numRuns: 2000 })
})

test('query pairs are the pieces between every & and ; (generated queries), as a split on both finds them', () => {
  // The reading Rack gives: split on '&' and ';', empty pieces skipped, name and value decoded once.
  const reference = (query: string): Array<[string, string]> => query.split(/[&;]/).filter(p => p !== '').map(piece => {
    const eq = piece.indexOf('=')
    return [decodeFormComponent(eq === -1 ? piece : piece.slice(0, eq)), eq === -1 ? '' : decodeFormComponent(piece.slice(eq + 1))]
  })
  const piece = fc.array(fc.constantFrom('&', ';', '=', 'a', 'job_token', '%41', '+', 'glcbt-x', ' ', '%', '\u00e9'), { maxLength: 8 }).map(parts => parts.join(''))
  fc.assert(fc.property(piece, query => {
    assert.deepEqual(queryPairs(query), reference(query), query)
  }), { numRuns: 3000 })
})

test('a header named with underscores or holding a comma is read as Rack reads it', () => {
  const found = collectCredentials({ canonical: { method: 'GET', path: '/', query: '' }, headers: {}, rawHeaders: ['Job_Token', `${A}`, 'PRIVATE-TOKEN', ` ${A} ,, ${B}`], route: null })
  assert.deepEqual(found.map(c => [c.where, c.secret]), [['header:job-token', A], ['header:private-token', A], ['header:private-token', B]])
})
