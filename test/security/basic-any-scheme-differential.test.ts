// Differential: the routes that declare `authenticate_with` read HTTP Basic through TokenLocator's
// `http_basic_auth` (lib/gitlab/api_authentication/token_locator.rb): ActionController's
// `user_name_and_password` on the Authorization Puma hands over, whatever its first word, both
// parts present. Generated Authorization lines (schemes, separators, base64 bent every way Ruby's
// decode64 still reads, lines split where Puma and Envoy join them) go to ActionPack once per
// batch and to a real gate on a Helm route, as three deployments deliver them:
// - the proxy: GitLab gets what the gate forwards, the first Authorization line (Node keeps one);
// - forward-auth behind nginx: the gate gets the lines, GitLab gets them joined by Puma (', ');
// - forward-auth behind Envoy: the gate gets the lines joined with ',' (ext_authz), GitLab gets
//   them as lines, joined by Puma.
// Wherever ActionPack reads the job token of a project off the target's allowlist, the gate must
// refuse. GATE_BASIC_SEED and GATE_BASIC_RUNS replay a run.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fc from 'fast-check'
import { collectCredentials } from '../../src/identity/credentials.ts'
import { isJobTokenShape } from '../../src/identity/token-shape.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { rawRequest } from '../helpers/http.ts'
import { railsUnavailable } from '../helpers/rails-routes.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { catalogRouter } from '../identity/harness.ts'

const PATH = '/api/v4/projects/200/packages/helm/stable/index.yaml'

// For each list of Authorization values on stdin (latin1 text, one character per byte), what
// TokenLocator's http_basic_auth takes from them joined as Puma joins lines: [user, password],
// or null where either is blank.
const TOKEN_LOCATOR_RB = `
require 'json'
require 'action_controller'
include ActionController::HttpAuthentication::Basic
Req = Struct.new(:authorization)
text = ->(s) { s.b.force_encoding(Encoding::ISO_8859_1).encode(Encoding::UTF_8) }
answers = JSON.parse($stdin.read).map do |lines|
  value = lines.map { |l| l.encode(Encoding::ISO_8859_1).b }.join(', ')
  user, password = user_name_and_password(Req.new(value))
  user.present? && password.present? ? [text.(user), text.(password)] : nil
end
puts JSON.generate(answers)
`

function tokenLocatorReads (cases: ReadonlyArray<readonly string[]>): Array<[string, string] | null> {
  const run = spawnSync('ruby', ['-e', TOKEN_LOCATOR_RB], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (run.error !== undefined || run.status !== 0) throw new Error(`ActionPack failed: ${run.error?.message ?? run.stderr}`)
  return JSON.parse(run.stdout) as Array<[string, string] | null>
}

const A = fc.constantFrom
const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64')

/** Basic credentials as base64, bent as clients (and attackers) bend it; Ruby's decode64 reads most alike. */
const param = fc.record({
  user: A('gitlab-ci-token', 'gitlab-ci-token', 'helm', 'helm', '', 'a:b', TOKENS.tools, ' '),
  password: A(TOKENS.tools, TOKENS.tools, TOKENS.tools, TOKENS.tools, `${TOKENS.tools}:x`, ''),
  colon: A(true, true, true, true, true, false),
  shape: fc.nat({ max: 12 }),
  at: fc.nat(),
  junk: A('-', '_', ' ', '\t', '.', '!', '=', '==', ',', ', ', '\xa0', '\xff', '*')
}).map(({ user, password, colon, shape, at, junk }) => {
  const plain = colon ? `${user}:${password}` : `${user}${password}`
  const std = b64(plain)
  const k = at % (std.length + 1)
  switch (shape) {
    case 0: return std.replace(/=+$/, '')
    case 1: return std.replaceAll('+', '-').replaceAll('/', '_')
    case 2: return std.slice(0, k) + junk + std.slice(k)
    case 3: return junk + std
    case 4: return std + junk
    case 5: { const cut = at % (plain.length + 1); return b64(plain.slice(0, cut)) + b64(plain.slice(cut)) }
    default: return std
  }
})

/** One Authorization value: a first word (a scheme or anything), a separator, the credentials. */
const value = fc.record({
  before: A('', '', '', '', '', '', '', 'X ', 'Basic ', 'A,'),
  scheme: A('Basic', 'Basic', 'basic', 'BASIC', 'Bearer', 'Foo', 'Token', 'token', 'Digest', '', 'Basic,', 'Foo,AAA', 'Foo,AAAA', 'a,b,c', 'B', 'Basic\xa0', ','),
  sep: A(' ', ' ', ' ', '  ', '\t', ' \t ', '', ',', ', ', '\xa0', ' , '),
  param
}).map(v => `${v.before}${v.scheme}${v.sep}${v.param}`)

/** Authorization lines: one value, or one split over lines, with another line beside it at times. */
const lines = fc.record({
  value,
  cuts: fc.oneof({ weight: 3, arbitrary: fc.constant<number[]>([]) }, { weight: 2, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 2 }) }),
  other: A(null, null, null, null, null, null, '', 'Bearer glpat-other', 'Foo', 'Basic'),
  otherFirst: fc.boolean()
}).map(({ value, cuts, other, otherFirst }) => {
  const at = [...new Set(cuts.map(c => c % (value.length + 1)))].sort((a, b) => a - b)
  const pieces = [0, ...at].map((start, i) => value.slice(start, at[i] ?? value.length))
  const all = other === null ? pieces : otherFirst ? [other, ...pieces] : [...pieces, other]
  // Node (llhttp) and Puma both trim a header value's surrounding spaces and tabs.
  return all.map(l => l.replace(/^[ \t]+|[ \t]+$/g, ''))
})

type Mode = 'proxy' | 'nginx' | 'envoy'
/** What GitLab gets in each deployment (lines), and what the gate is sent. */
const DELIVERY: Record<Mode, { gitlab: (ls: string[]) => string[], gate: (ls: string[]) => string[] }> = {
  proxy: { gitlab: ls => ls.slice(0, 1), gate: ls => ls },
  nginx: { gitlab: ls => ls, gate: ls => ls },
  envoy: { gitlab: ls => ls, gate: ls => [ls.join(',').replace(/^[ \t]+|[ \t]+$/g, '')] }
}

test('what ActionPack decodes as Basic under any scheme, the gate reads: a job token there is refused', async t => {
  if (!requireTool(t, railsUnavailable())) return
  const seed = process.env.GATE_BASIC_SEED === undefined ? (Date.now() ^ (process.pid << 16)) & 0x3fffffff : Number(process.env.GATE_BASIC_SEED)
  const runs = process.env.GATE_BASIC_RUNS === undefined ? 600 : Number(process.env.GATE_BASIC_RUNS)
  t.diagnostic(`seed ${seed}, ${runs} cases; replay with GATE_BASIC_SEED=${seed} GATE_BASIC_RUNS=${runs}`)
  const cases = fc.sample(lines, { numRuns: runs, seed })
  const modes = Object.keys(DELIVERY) as Mode[]
  const reads = tokenLocatorReads(cases.flatMap(ls => modes.map(m => DELIVERY[m].gitlab(ls))))

  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const ports: Record<Mode, number> = { proxy: Number(new URL(g.url).port), nginx: g.gate.authAddress()!.port, envoy: g.gate.authAddress()!.port }
  const route = catalogRouter().match('GET', PATH.slice('/api/v4'.length))?.route ?? null
  assert.equal(route?.authenticateWith, true, 'a Helm route declares authenticate_with')
  let jobTokens = 0
  const problems: string[] = []
  for (const [i, ls] of cases.entries()) {
    for (const [j, mode] of modes.entries()) {
      const read = reads[i * modes.length + j]!
      const sent = DELIVERY[mode].gate(ls)
      const where = `${mode}: ${JSON.stringify(sent)} (GitLab: ${JSON.stringify(DELIVERY[mode].gitlab(ls))})`
      if (read === null) continue
      const [user, password] = read
      // The gate's reading, function by function: a job token ActionPack decodes is one to the gate too.
      if (user === 'gitlab-ci-token' || isJobTokenShape(password)) {
        const found = collectCredentials({ canonical: { method: 'GET', path: PATH, query: '' }, headers: { authorization: sent[0] }, rawHeaders: sent.flatMap(l => ['Authorization', l]), route })
        if (!found.some(c => c.jobToken && c.secret === password)) problems.push(`${where}: ActionPack reads ${JSON.stringify(read)}, the gate does not`)
      }
      if (password !== TOKENS.tools) continue
      jobTokens++
      const before = g.seen.length
      const answer = await rawRequest(ports[mode], [`GET ${PATH} HTTP/1.1`, ...sent.map(l => `Authorization: ${l}`)])
      if (answer.status === 200 || g.seen.length !== before) problems.push(`${where}: ActionPack reads a job token off the allowlist, the gate answered ${answer.status} ${answer.body.slice(0, 80)}`)
      else assert.ok(answer.status === 401 || answer.status === 403, `${where}: ${answer.status} ${answer.body}`)
    }
  }
  t.diagnostic(`${jobTokens} deliveries held the job token to ActionPack`)
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} disagreements; replay with GATE_BASIC_SEED=${seed} GATE_BASIC_RUNS=${runs}`)
  assert.ok(jobTokens > runs / 4, `only ${jobTokens} deliveries held the job token: the generator misses what it is for`)
})
