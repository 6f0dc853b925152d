// (npm run test:slow) Every regular expression literal in src/ is checked with recheck (a ReDoS
// analyser, npm `recheck`) for super-linear backtracking. Several were quadratic over client input (a MiB of
// backslashes in a GraphQL body held the gate for minutes: quadratic-expressions.test.ts), so a
// new one that is not linear fails here, unless it only ever reads the gate's own configuration
// or catalog (listed below with the reason). Expressions built with `new RegExp(...)` from parts
// are not literals and not seen here: src/identity/multipart.ts builds Rack's, which the fuzz
// targets time (test/fuzz).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { checkSync } from 'recheck'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Not linear, but never given client input: file, expression, why. */
const TRUSTED_INPUT: ReadonlyArray<readonly [string, string, string]> = [
  ['src/catalog/load.ts', '/^\\/(routes|policies)\\/(\\d+)(.*)$/', 'paths of the catalog schema\'s validation errors'],
  ['src/config.ts', '/^(?:\\[([0-9a-fA-F:]+)\\]|([^:]+)|([0-9a-fA-F:]*:[0-9a-fA-F:]*)):(\\d{1,5})$/', 'a listen address from the environment'],
  ['src/config.ts', '/\\/+$/', 'a URL from the environment'],
  ['src/gitlab/client.ts', '/\\/+$/', 'GATE_UPSTREAM_URL'],
  ['src/graphql/catalog.ts', '/^_+|_+$/g', 'the GraphQL permissions page, imported by the operator'],
  ['src/graphql/schema.ts', '/\\/+$/', 'the --url of the schema command'],
  ['src/proxy/forward.ts', '/\\/+$/', 'GATE_UPSTREAM_URL']
]

function literals (): Array<{ file: string, line: number, text: string }> {
  const found: Array<{ file: string, line: number, text: string }> = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (path.endsWith('.ts')) {
        const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true)
        const visit = (node: ts.Node): void => {
          if (node.kind === ts.SyntaxKind.RegularExpressionLiteral) {
            found.push({ file: relative(ROOT, path), line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1, text: node.getText() })
          }
          ts.forEachChild(node, visit)
        }
        visit(source)
      }
    }
  }
  walk(join(ROOT, 'src'))
  return found
}

test('every regular expression literal in src/ backtracks in linear time, or only reads the gate\'s own settings', () => {
  const all = literals()
  assert.ok(all.length > 150, `only ${all.length} expressions found: is the walk broken?`)
  const problems: string[] = []
  const trustedSeen = new Set<string>()
  for (const { file, line, text } of all) {
    const slash = text.lastIndexOf('/')
    // The timeout only stops an analysis that runs away: on a busy machine one that takes a
    // second alone ran past 10 s and read `unknown`.
    const result = checkSync(text.slice(1, slash), text.slice(slash + 1), { timeout: 60_000 })
    if (result.status === 'safe') continue
    const trusted = TRUSTED_INPUT.find(([f, re]) => f === file && re === text)
    if (trusted !== undefined) {
      trustedSeen.add(`${file} ${text}`)
      continue
    }
    const attack = result.status === 'vulnerable' ? ` (${result.complexity.summary}; attack ${result.attack.pattern.slice(0, 80)})` : ''
    problems.push(`${file}:${line} ${text}: ${result.status}${attack}`)
  }
  assert.deepEqual(problems, [], 'linear expressions only over client input')
  // The list stays true: each entry is still there and still not linear.
  assert.deepEqual([...trustedSeen].sort(), TRUSTED_INPUT.map(([f, re]) => `${f} ${re}`).sort())
})
