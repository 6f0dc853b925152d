import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildSchema, graphql, printSchema, type GraphQLSchema } from 'graphql'
import { runCli } from '../../src/cli/main.ts'
import { ConfigError } from '../../src/config.ts'
import { fetchGitlabSchema, loadGraphqlSchema } from '../../src/graphql/schema.ts'
import { REFUSED_PORT } from '../helpers/ports.ts'

const FIXTURE = fileURLToPath(new URL('../fixtures/graphql/gitlab-subset.graphql', import.meta.url))
const FIXTURE_SCHEMA = buildSchema(readFileSync(FIXTURE, 'utf8'))
const TOKEN = 'glpat-schema-test-0123456789'

interface Fake { url: string, requests: Array<{ path: string, authorization: string | undefined, operationName: unknown }> }

/**
 * A GitLab answering POST <root>/api/graphql by running the query against `schema`, as GitLab
 * does; `answer` replaces that for the failure cases.
 */
async function startFakeGraphql (t: { after: (fn: () => Promise<void> | void) => void }, options: { root?: string, schema?: GraphQLSchema, answer?: (req: IncomingMessage, body: Record<string, unknown>, res: ServerResponse) => boolean } = {}): Promise<Fake> {
  const requests: Fake['requests'] = []
  const root = options.root ?? ''
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>
        requests.push({ path: req.url ?? '', authorization: req.headers.authorization, operationName: body['operationName'] })
        if (options.answer?.(req, body, res) === true) return
        if (req.method !== 'POST' || req.url !== `${root}/api/graphql`) {
          res.writeHead(404, { 'content-type': 'text/html' }).end('<html>Not found</html>')
          return
        }
        const result = await graphql({ schema: options.schema ?? FIXTURE_SCHEMA, source: String(body['query']), operationName: body['operationName'] as string })
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result))
      })()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => { resolve() }) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${root}`, requests }
}

function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'graphql-schema-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

async function cli (args: string[], env: Record<string, string> = {}): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(args, { out: s => { out += s }, err: s => { err += s } }, env)
  return { code, out, err }
}

test('loadGraphqlSchema builds an SDL file; a missing or broken one is a ConfigError naming GATE_GRAPHQL_SCHEMA', (t) => {
  const schema = loadGraphqlSchema(FIXTURE)
  assert.ok(schema.getMutationType()?.getFields()['ciJobTokenScopeAddGroupOrProject'])
  const dir = tempDir(t)
  assert.throws(() => loadGraphqlSchema(join(dir, 'missing.graphql')), (err: Error) => err instanceof ConfigError && /^GATE_GRAPHQL_SCHEMA: cannot read .*missing\.graphql: ENOENT$/.test(err.message))
  writeFileSync(join(dir, 'broken.graphql'), 'type Query { a: Missing }')
  assert.throws(() => loadGraphqlSchema(join(dir, 'broken.graphql')), (err: Error) => err instanceof ConfigError && /^GATE_GRAPHQL_SCHEMA: .*broken\.graphql: not a usable SDL schema: Unknown type "Missing"/.test(err.message))
  writeFileSync(join(dir, 'syntax.graphql'), 'type Query {')
  assert.throws(() => loadGraphqlSchema(join(dir, 'syntax.graphql')), /^ConfigError: GATE_GRAPHQL_SCHEMA: .*syntax\.graphql: not a usable SDL schema: Syntax Error/)
})

test('graphql-schema save writes the schema GitLab introspects, which builds and prints as the original', async (t) => {
  const gitlab = await startFakeGraphql(t, { root: '/gitlab' })
  const dir = tempDir(t)
  const file = join(dir, 'schema.graphql')
  const { code, out, err } = await cli(['graphql-schema', 'save', '--url', gitlab.url + '/', '-o', file], { GITLAB_TOKEN: TOKEN })
  assert.equal(code, 0, err)
  assert.equal(err, '')
  assert.match(out, /^saved GitLab's GraphQL schema \(\d+ types, \d+ bytes\) to .*schema\.graphql\n$/)
  const saved = readFileSync(file, 'utf8')
  assert.equal(printSchema(buildSchema(saved)), printSchema(FIXTURE_SCHEMA))
  assert.equal(printSchema(loadGraphqlSchema(file)), printSchema(FIXTURE_SCHEMA))
  // Deprecated input fields came along (asked with includeDeprecated).
  assert.match(saved, /targetProjectPath: ID!\n {2}direction: CiJobTokenScopeDirection @deprecated/)
  assert.deepEqual(gitlab.requests.map(r => [r.path, r.authorization, r.operationName]), [['/gitlab/api/graphql', `Bearer ${TOKEN}`, 'IntrospectionQuery']])
  assert.equal(existsSync(`${file}.${process.pid}.partial`), false)
})

test('a GitLab that does not know includeDeprecated on arguments is asked again without it', async (t) => {
  const gitlab = await startFakeGraphql(t, {
    answer: (_req, body, res) => {
      if (!String(body['query']).includes('inputFields(includeDeprecated: true)')) return false
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: "Field 'inputFields' doesn't accept argument 'includeDeprecated'" }] }))
      return true
    }
  })
  const sdl = await fetchGitlabSchema({ url: gitlab.url, token: TOKEN })
  assert.equal(gitlab.requests.length, 2)
  assert.ok(buildSchema(sdl).getType('CiJobTokenScopeRemoveProjectInput'))
})

test('graphql-schema save says clearly why GitLab gave no schema, and writes nothing', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'schema.graphql')
  const save = async (url: string, env: Record<string, string> = { GITLAB_TOKEN: TOKEN }): Promise<{ code: number, out: string, err: string }> => await cli(['graphql-schema', 'save', '--url', url, '-o', file], env)

  const unauthorized = await startFakeGraphql(t, { answer: (_req, _body, res) => { res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"401 Unauthorized"}'); return true } })
  let r = await save(unauthorized.url)
  assert.equal(r.code, 1)
  assert.match(r.err, /api\/graphql answered 401 Unauthorized: GITLAB_TOKEN is not accepted; it must be a personal access token with the read_api scope\n$/)
  assert.ok(!r.err.includes(TOKEN), 'the token is never printed')
  r = await save(unauthorized.url, {})
  assert.match(r.err, /GITLAB_TOKEN is not set: asking anonymously\n.*answered 401 Unauthorized: this GitLab needs a token; set GITLAB_TOKEN to a personal access token/s)
  assert.equal(unauthorized.requests.at(-1)?.authorization, undefined)

  const html = await startFakeGraphql(t, { answer: (_req, _body, res) => { res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>'); return true } })
  r = await save(html.url)
  assert.equal(r.code, 1)
  assert.match(r.err, /api\/graphql did not answer GraphQL \(HTTP 200, text\/html\): is --url GitLab's base URL\?\n$/)

  const disabled = await startFakeGraphql(t, { answer: (_req, _body, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"errors":[{"message":"Introspection is disabled"}]}'); return true } })
  r = await save(disabled.url)
  assert.match(r.err, /did not answer the introspection query \(errors: Introspection is disabled\)\n$/)

  const redirect = await startFakeGraphql(t, { answer: (_req, _body, res) => { res.writeHead(301, { location: 'https://gitlab.example.com/api/graphql' }).end(); return true } })
  r = await save(redirect.url)
  assert.match(r.err, /answered 301, a redirect to https:\/\/gitlab\.example\.com\/api\/graphql: give --url as GitLab's base URL/)

  // A port nothing listens on.
  r = await save(`http://127.0.0.1:${REFUSED_PORT}`)
  assert.equal(r.code, 1)
  assert.match(r.err, /cannot reach GitLab at http:\/\/127\.0\.0\.1:\d+\/api\/graphql: ECONNREFUSED\n$/)

  r = await save('gitlab.example.com')
  assert.match(r.err, /--url must be GitLab's base URL, e.g\. https:\/\/gitlab\.example\.com, got "gitlab\.example\.com"/)
  r = await save(`http://user:${TOKEN}@127.0.0.1:1`)
  assert.match(r.err, /--url must not carry credentials: set GITLAB_TOKEN instead/)
  assert.ok(!r.err.includes(TOKEN))
  // Refused for another reason, a URL with a token in it (as git takes one) was printed whole.
  r = await save(`oauth2:${TOKEN}@gitlab.example.com`)
  assert.match(r.err, /--url must be an http or https URL, got "oauth2:\*\*\*@gitlab\.example\.com"/)
  assert.ok(!r.err.includes(TOKEN))
  r = await save(`https://oauth2:${TOKEN}@gitlab example.com`)
  assert.match(r.err, /--url must be GitLab's base URL, e\.g\. https:\/\/gitlab\.example\.com, got "https:\/\/\*\*\*@gitlab example\.com"/)
  assert.ok(!r.err.includes(TOKEN))
  assert.equal(existsSync(file), false)
})

test('graphql-schema save needs --url and -o, a whole --timeout-ms, and --help lists it', async () => {
  const r = await cli(['graphql-schema', 'save', '--url', 'http://127.0.0.1:1'])
  assert.notEqual(r.code, 0)
  assert.match(r.err, /required option '-o, --output <file>' not specified/)
  const help = await cli(['--help'])
  assert.match(help.out, /graphql-schema/)
  const timeout = await cli(['graphql-schema', 'save', '--url', 'http://127.0.0.1:1', '-o', '/nonexistent/x', '--timeout-ms', 'soon'])
  assert.equal(timeout.code, 2)
  assert.match(timeout.err, /--timeout-ms must be a whole number of milliseconds/)
})
