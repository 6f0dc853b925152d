// Where the enforcement at /api/graphql finds a request's access token (findGraphqlToken): as
// GitLab's GraphQL reads one, in every reading of the parameters. A table, as the decide tests.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readGraphqlParams } from '../../src/admin/graphql.ts'
import { findGraphqlToken, type GraphqlToken } from '../../src/graphql/enforce.ts'

interface Case {
  readonly name: string
  readonly headers?: Record<string, string>
  /** The raw header lines, as Node's rawHeaders (the headers object is built from them). */
  readonly lines?: readonly string[]
  readonly query?: string
  readonly body?: string
  readonly contentType?: string
  readonly expected: GraphqlToken
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

const CASES: Case[] = [
  { name: 'nothing', expected: { kind: 'none' } },
  { name: 'PRIVATE-TOKEN', headers: { 'private-token': 'glpat-a' }, expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'Bearer', headers: { authorization: 'Bearer glpat-a' }, expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'Basic password', headers: { authorization: basic('me', 'glpat-a') }, expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'private_token in the URL', query: 'private_token=glpat-a', expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'access_token in a JSON body', body: '{"query":"{ x }","access_token":"glpat-a"}', expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'private_token in a form body', body: 'query=x&private_token=glpat-a', contentType: 'application/x-www-form-urlencoded', expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'the same token twice is one', headers: { 'private-token': 'glpat-a', authorization: 'Bearer glpat-a' }, query: 'private_token=glpat-a', expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'two tokens', headers: { 'private-token': 'glpat-a' }, query: 'access_token=glpat-b', expected: { kind: 'ambiguous' } },
  { name: 'a second token only under Rack 2\'s ";" reading', headers: { 'private-token': 'glpat-a' }, query: 'x=1;private_token=glpat-b', expected: { kind: 'ambiguous' } },
  { name: 'a JOB-TOKEN header', headers: { 'job-token': 'glcbt-64_x' }, expected: { kind: 'job_token' } },
  { name: 'a job token as Bearer', headers: { authorization: 'Bearer glcbt-64_x' }, expected: { kind: 'job_token' } },
  // GitLab's GraphQL reads the password of Basic as an access token under any user name.
  { name: 'gitlab-ci-token in Basic', headers: { authorization: basic('gitlab-ci-token', 'anything') }, expected: { kind: 'token', token: 'anything', ciUser: true } },
  { name: 'a job token under gitlab-ci-token in Basic', headers: { authorization: basic('gitlab-ci-token', 'glcbt-64_x') }, expected: { kind: 'job_token' } },
  { name: 'nothing under gitlab-ci-token in Basic', headers: { authorization: basic('gitlab-ci-token', '') }, expected: { kind: 'job_token' } },
  { name: 'a job token beside a personal access token', headers: { 'job-token': 'glcbt-64_x', 'private-token': 'glpat-a' }, expected: { kind: 'ambiguous' } },
  { name: 'a job_token parameter beside a personal access token', headers: { 'private-token': 'glpat-a' }, body: '{"query":"{ x }","job_token":"anything"}', expected: { kind: 'ambiguous' } },
  { name: 'a number in a JSON body is a token Rails reads', headers: { 'private-token': 'glpat-a' }, body: '{"query":"{ x }","private_token":12345}', expected: { kind: 'ambiguous' } },
  { name: 'a blank header is no token', headers: { 'private-token': '  ' }, expected: { kind: 'none' } },
  { name: 'a list or hash parameter is no token GitLab can find', query: 'private_token[]=glpat-a&access_token[x]=glpat-b', expected: { kind: 'none' } },
  // Puma reads a header name's '_' as '-': `Private_Token` is PRIVATE-TOKEN to GitLab.
  { name: 'Private_Token', lines: ['Private_Token', 'glpat-a'], expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'PRIVATE_TOKEN', lines: ['PRIVATE_TOKEN', 'glpat-a'], expected: { kind: 'token', token: 'glpat-a' } },
  { name: 'Private_Token beside another PRIVATE-TOKEN', lines: ['Private-Token', 'glpat-a', 'Private_Token', 'glpat-b'], expected: { kind: 'ambiguous' } },
  { name: 'Job_Token is a job token', lines: ['Job_Token', 'glcbt-64_x'], expected: { kind: 'job_token' } },
  { name: 'Job_Token beside a personal access token', lines: ['Job_Token', 'anything', 'Private-Token', 'glpat-a'], expected: { kind: 'ambiguous' } },
  { name: 'two PRIVATE-TOKEN lines with other tokens', lines: ['Private-Token', 'glpat-a', 'private-token', 'glpat-b'], expected: { kind: 'ambiguous' } },
  { name: 'two Authorization lines (Puma joins them; Node keeps the first)', lines: ['Authorization', 'Bearer glpat-a', 'Authorization', 'Bearer glpat-b'], expected: { kind: 'ambiguous' } },
  // Joined, "Basic !, dTpnbHBhdC1h" is u:glpat-a to Rails (Base64 skips what is not Base64).
  { name: 'a token split over two Authorization lines, neither a token alone', lines: ['Authorization', 'Basic !', 'Authorization', 'dTpnbHBhdC1h'], expected: { kind: 'ambiguous' } }
]

/** Node's headers object for raw lines: lower-case names, a repeated custom header joined with ', ', the first Authorization only. */
function headersOf (lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {}
  for (let i = 0; i < lines.length; i += 2) {
    const name = lines[i]!.toLowerCase()
    const value = lines[i + 1]!
    if (headers[name] === undefined) headers[name] = value
    else if (name !== 'authorization') headers[name] += `, ${value}`
  }
  return headers
}

test('findGraphqlToken: where the token is, as GitLab reads it', () => {
  for (const c of CASES) {
    const params = readGraphqlParams(Buffer.from(c.body ?? ''), { method: 'POST', query: c.query ?? '', contentType: c.contentType ?? 'application/json', bodyReadable: true })
    const request = c.lines === undefined ? { headers: c.headers ?? {} } : { headers: headersOf(c.lines), rawHeaders: c.lines }
    assert.deepEqual(findGraphqlToken(request, params), c.expected, c.name)
  }
})
