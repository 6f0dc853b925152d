import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Kind, getIntrospectionQuery, print } from 'graphql'
import { loadConfig } from '../../src/config.ts'
import { BRACKET_ALLOWANCE, DEFAULT_DOCUMENT_LIMITS, createDocumentCache, documentLimitsOf, readDocument, type DocumentResult } from '../../src/graphql/documents.ts'

// Hang detector only: each case takes milliseconds.
const HANG = { timeout: 30_000 }

function refused (result: DocumentResult): { code: string, message: string } {
  assert.equal(result.ok, false, 'expected a refusal')
  if (result.ok) throw new Error('unreachable')
  return { code: result.code, message: result.message }
}

function accepted (result: DocumentResult): void {
  assert.equal(result.ok, true, result.ok ? '' : `${result.code}: ${result.message}`)
}

/** `{ a { a { ... b } } }` with `depth` fields nested. */
function nested (depth: number): string {
  return '{' + 'a{'.repeat(depth - 1) + 'b' + '}'.repeat(depth)
}

test('the defaults are GitLab\'s limits', () => {
  assert.deepEqual({ ...DEFAULT_DOCUMENT_LIMITS }, { maxBytes: 40_000, maxTokens: 10_000, maxDepth: 20, maxExpandedFields: 10_000 })
})

test('depth: at the limit passes, one more is refused, naming the depth, the limit and its setting', () => {
  accepted(readDocument(nested(20)))
  assert.deepEqual(refused(readDocument(nested(21))), {
    code: 'GRAPHQL_DOCUMENT_TOO_DEEP',
    message: 'the GraphQL document has depth 21; the gate allows at most 20 (GATE_GRAPHQL_MAX_DEPTH)'
  })
  const limits = { ...DEFAULT_DOCUMENT_LIMITS, maxDepth: 3 }
  accepted(readDocument('query { a { b { c } } }', limits))
  assert.match(refused(readDocument('query { a { b { c { d } } } }', limits)).message, /has depth 4; the gate allows at most 3 /)
})

test('the standard introspection query passes the default limits (depth 15 of 20)', () => {
  for (const query of [getIntrospectionQuery(), getIntrospectionQuery({ inputValueDeprecation: true })]) {
    accepted(readDocument(query))
    assert.match(refused(readDocument(query, { ...DEFAULT_DOCUMENT_LIMITS, maxDepth: 14 })).message, /has depth 15;/)
  }
})

test('depth follows fragments where they are spread; inline fragments add nothing', () => {
  const limits = { ...DEFAULT_DOCUMENT_LIMITS, maxDepth: 3 }
  const viaFragments = 'query { a { ...F } } fragment F on T { b { ...G } } fragment G on T { c }'
  accepted(readDocument(viaFragments, limits))
  assert.match(refused(readDocument(viaFragments.replace('{ c }', '{ c { d } }'), limits)).message, /has depth 4;/)
  accepted(readDocument('query { a { ... on T { ... on T { b { c } } } } }', limits))
  // A fragment is measured on its own too, spread or not.
  assert.match(refused(readDocument('query { a } fragment Deep on T { a { b { c { d } } } }', limits)).message, /has depth 4;/)
  // The same fragment spread at several depths counts at the deepest.
  accepted(readDocument('query { x ...F a { b { ...F } } } fragment F on T { c }', limits))
  assert.match(refused(readDocument('query { x ...F a { b { ...F } } } fragment F on T { c { d } }', limits)).message, /has depth 4;/)
})

test('bytes: at the limit passes, one more is refused before parsing; multi-byte text is counted in UTF-8 bytes', () => {
  const limits = { ...DEFAULT_DOCUMENT_LIMITS, maxBytes: 100 }
  const pad = (n: number, char = ' '): string => '{ a }' + char.repeat(n - 5)
  accepted(readDocument(pad(100), limits))
  assert.deepEqual(refused(readDocument(pad(101), limits)), {
    code: 'GRAPHQL_DOCUMENT_TOO_LARGE',
    message: 'the GraphQL document has 101 bytes; the gate allows at most 100 (GATE_GRAPHQL_MAX_BYTES)'
  })
  // 6 + 32 × 3 = 102 bytes in 38 UTF-16 code units (a comment).
  const multi = '{ a }#' + '€'.repeat(32)
  assert.equal(Buffer.byteLength(multi), 102)
  assert.match(refused(readDocument(multi, limits)).message, /has 102 bytes; the gate allows at most 100/)
  // Far over: not even counted exactly.
  assert.match(refused(readDocument(pad(5000, '\n'), limits)).message, /has at least 5000 bytes; the gate allows at most 100/)
})

test('tokens: at the limit passes, one more is refused; comments are no tokens', () => {
  const limits = { ...DEFAULT_DOCUMENT_LIMITS, maxTokens: 12 }
  // { a b c d e f g h i j } : 12 tokens
  accepted(readDocument('{ a b c d e f g h i j }', limits))
  accepted(readDocument('{ a b c d e f g h i j } # x y z', limits))
  assert.deepEqual(refused(readDocument('{ a b c d e f g h i j k }', limits)), {
    code: 'GRAPHQL_DOCUMENT_TOO_LARGE',
    message: 'the GraphQL document has more than 12 tokens; the gate allows at most 12 (GATE_GRAPHQL_MAX_TOKENS)'
  })
})

test('aliases: no limit by default; at the limit passes, one more is refused', () => {
  const doc = '{ a: x b: x c: x d: y { e: z } }'
  accepted(readDocument(doc))
  accepted(readDocument(doc, { ...DEFAULT_DOCUMENT_LIMITS, maxAliases: 5 }))
  assert.deepEqual(refused(readDocument(doc, { ...DEFAULT_DOCUMENT_LIMITS, maxAliases: 4 })), {
    code: 'GRAPHQL_DOCUMENT_TOO_LARGE',
    message: 'the GraphQL document has 5 aliased fields; the gate allows at most 4'
  })
})

test('fragments that spread each other twice are refused by the fields they expand to, without expanding them', HANG, () => {
  // F0 spreads F1 twice, F1 spreads F2 twice, ... F39: 2^40 fields, in under 2 KB of text.
  let doc = 'query { ...F0 }'
  for (let i = 0; i < 40; i++) doc += ` fragment F${i} on T { a: x { ...F${i + 1} } b: x { ...F${i + 1} } }`
  doc += ' fragment F40 on T { y }'
  const limits = { ...DEFAULT_DOCUMENT_LIMITS, maxDepth: 100 }
  const { code, message } = refused(readDocument(doc, limits))
  assert.equal(code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
  assert.match(message, /^the GraphQL document selects \d+ fields once its fragments are expanded; the gate allows at most 10000$/)
  assert.equal(Number(/selects (\d+)/.exec(message)?.[1]), 2 ** 41 - 2 + 2 ** 40)
  // At the bound it passes: 1 + 2 + ... fields counted where spread.
  accepted(readDocument('query { ...F ...F } fragment F on T { a b }', { ...DEFAULT_DOCUMENT_LIMITS, maxExpandedFields: 4 }))
  assert.match(refused(readDocument('query { ...F ...F c } fragment F on T { a b }', { ...DEFAULT_DOCUMENT_LIMITS, maxExpandedFields: 4 })).message, /selects 5 fields/)
})

test('10,000 nested levels are refused without a stack overflow, whatever the token and byte limits', HANG, () => {
  const deep = nested(10_000)
  const max = DEFAULT_DOCUMENT_LIMITS.maxDepth + BRACKET_ALLOWANCE
  assert.deepEqual(refused(readDocument(deep)), {
    code: 'GRAPHQL_DOCUMENT_TOO_DEEP',
    message: `the GraphQL document nests brackets more than ${max} deep (line 1); the gate reads at most ${max} ({, [ and ( together: GATE_GRAPHQL_MAX_DEPTH plus ${BRACKET_ALLOWANCE})`
  })
  const roomy = { ...DEFAULT_DOCUMENT_LIMITS, maxBytes: 10_000_000, maxTokens: 10_000_000 }
  assert.equal(refused(readDocument(deep, roomy)).code, 'GRAPHQL_DOCUMENT_TOO_DEEP')
  // Lists and input objects in arguments nest the parser's recursion as much as selections do.
  assert.equal(refused(readDocument(`{ a(x: ${'['.repeat(10_000)}1${']'.repeat(10_000)}) }`, roomy)).code, 'GRAPHQL_DOCUMENT_TOO_DEEP')
  assert.equal(refused(readDocument(`{ a(x: ${'{b:'.repeat(10_000)}1${'}'.repeat(10_000)}) }`, roomy)).code, 'GRAPHQL_DOCUMENT_TOO_DEEP')
  // Brackets in strings and comments are no brackets.
  accepted(readDocument(`{ a(x: "${'{'.repeat(10_000)}") } # ${'['.repeat(10_000)}`, roomy))
  // Within the bracket bound, values may nest deeper than fields.
  accepted(readDocument(`{ a(x: ${'['.repeat(100)}1${']'.repeat(100)}) }`))
})

test('a chain of 5,000 fragments, each one level deeper, is measured without recursion', HANG, () => {
  let doc = 'query { ...F0 }'
  for (let i = 0; i < 5000; i++) doc += ` fragment F${i} on T { a { ...F${i + 1} } }`
  doc += ' fragment F5000 on T { b }'
  const roomy = { ...DEFAULT_DOCUMENT_LIMITS, maxBytes: 10_000_000, maxTokens: 10_000_000 }
  assert.deepEqual(refused(readDocument(doc, roomy)), {
    code: 'GRAPHQL_DOCUMENT_TOO_DEEP',
    message: 'the GraphQL document has depth 5001; the gate allows at most 20 (GATE_GRAPHQL_MAX_DEPTH)'
  })
})

test('a huge document is refused before it is hashed or cached', HANG, () => {
  const cache = createDocumentCache()
  const huge = '{ a }' + ' '.repeat(50 * 1024 * 1024)
  const result = cache.parse(huge)
  assert.deepEqual(refused(result), { code: 'GRAPHQL_DOCUMENT_TOO_LARGE', message: `the GraphQL document has at least ${huge.length} bytes; the gate allows at most 40000 (GATE_GRAPHQL_MAX_BYTES)` })
  assert.equal('hash' in result, false)
  assert.equal(cache.size, 0)
})

test('fragment cycles, unknown and repeated fragments and schema definitions are invalid', () => {
  assert.deepEqual(refused(readDocument('query { ...A } fragment A on T { x ...A }')), {
    code: 'GRAPHQL_DOCUMENT_INVALID',
    message: 'the GraphQL document spreads fragment A within itself (A → A); fragments may not form cycles'
  })
  assert.deepEqual(refused(readDocument('query { ...A } fragment A on T { b { ...B } } fragment B on T { ... on T { ...C } } fragment C on T { ...A }')), {
    code: 'GRAPHQL_DOCUMENT_INVALID',
    message: 'the GraphQL document spreads fragment A within itself (A → B → C → A); fragments may not form cycles'
  })
  // A cycle among fragments no operation spreads is still a cycle.
  assert.match(refused(readDocument('query { x } fragment A on T { ...B } fragment B on T { ...A }')).message, /spreads fragment A within itself \(A → B → A\)/)
  assert.deepEqual(refused(readDocument('query { ...Missing }')), {
    code: 'GRAPHQL_DOCUMENT_INVALID',
    message: 'the GraphQL document spreads fragment Missing, which it does not define'
  })
  assert.match(refused(readDocument('query { ...A } fragment A on T { x } fragment A on T { y }')).message, /defines fragment A more than once/)
  assert.match(refused(readDocument('type Query { a: Int }')).message, /has a ObjectTypeDefinition definition; a request may hold only operations and fragments/)
})

test('syntax errors name the line and column', () => {
  assert.deepEqual(refused(readDocument('query {\n  project(fullPath: "a") {\n    id\n')), {
    code: 'GRAPHQL_DOCUMENT_INVALID',
    message: 'the GraphQL document is not valid at line 4, column 1: Syntax Error: Expected Name, found <EOF>.'
  })
  // A lexer error is found by the scan, before the parser runs.
  assert.match(refused(readDocument('{ a(x: "unterminated) }')).message, /^the GraphQL document is not valid at line 1, column 24: Syntax Error: Unterminated string\.$/)
  assert.equal(refused(readDocument('')).code, 'GRAPHQL_DOCUMENT_INVALID')
})

test('a document GitLab\'s parser would cut into other tokens is refused, naming where; CRLF comments are not', () => {
  assert.deepEqual(refused(readDocument('{\n  project(fullPath: "other/tools" #\r, fullPath: "acme/lib"\n) { id }\n}')), {
    code: 'GRAPHQL_DOCUMENT_AMBIGUOUS',
    message: 'GitLab\'s parser would read the GraphQL document otherwise than the gate: on line 2, a comment ends at a carriage return, where GitLab\'s parser reads it on to the next line feed'
  })
  assert.equal(refused(readDocument('{ a(x: """\\"""""") }')).code, 'GRAPHQL_DOCUMENT_AMBIGUOUS')
  assert.ok(readDocument('{\r\n  # a comment\r\n  project(fullPath: "acme/lib") { id }\r\n}\r\n').ok)
})

test('a name GraphQL allows once, given twice, is invalid as GitLab\'s validation finds it: the gate never picks one of two', () => {
  const message = (doc: string): string => refused(readDocument(doc)).message
  assert.equal(message('{ project(fullPath: "other/tools", fullPath: "acme/lib") { id } }'),
    'the GraphQL document gives field project the argument fullPath twice; GraphQL allows each name there once')
  assert.match(message('mutation { m(input: {projectPath: "a/b", projectPath: "c/d"}) { errors } }'), /gives an input object the field projectPath twice/)
  assert.match(message('{ a @include(if: true, if: false) }'), /gives directive @include the argument if twice/)
  assert.match(message('query($p: ID = "a/b", $p: ID = "c/d") { project(fullPath: $p) { id } }'), /declares the variable \$p twice/)
  assert.match(message('query Q { a } query Q { b }'), /names two operations Q/)
  assert.equal(refused(readDocument('{ project(fullPath: "a/b", fullPath: "c/d") { id } }')).code, 'GRAPHQL_DOCUMENT_INVALID')
  // The same name in different places is fine.
  assert.ok(readDocument('query A($p: ID) { a(x: 1) b(x: 2) c: a(x: {x: {x: 3}}) @skip(if: false) } query B($p: ID) { a }').ok)
})

test('a parsed document carries its sha256, and no locations', () => {
  const text = 'query Q($p: ID!) { project(fullPath: $p) { id } }'
  const result = readDocument(text)
  assert.ok(result.ok)
  assert.equal(result.hash, createHash('sha256').update(text).digest('hex'))
  assert.equal(result.document.loc, undefined)
  assert.equal(result.document.definitions[0]?.kind, Kind.OPERATION_DEFINITION)
  assert.equal(print(result.document), 'query Q($p: ID!) {\n  project(fullPath: $p) {\n    id\n  }\n}')
})

test('the cache returns the same result object for the same text, successes and refusals alike', () => {
  const cache = createDocumentCache()
  const first = cache.parse('{ a }')
  assert.equal(cache.parse('{ a }'), first)
  assert.notEqual(cache.parse('{ a } '), first)
  const bad = cache.parse('{ a ')
  assert.equal(refused(bad).code, 'GRAPHQL_DOCUMENT_INVALID')
  assert.equal(cache.parse('{ a '), bad)
  assert.equal(cache.size, 3)
  assert.ok(Object.isFrozen(first))
})

test('the cache is bounded by count and by the bytes of the texts it keeps', () => {
  const byCount = createDocumentCache({ max: 2 })
  const a = byCount.parse('{ a }')
  byCount.parse('{ b }')
  byCount.parse('{ c }')
  assert.equal(byCount.size, 2)
  assert.notEqual(byCount.parse('{ a }'), a, 'the least recently used entry was dropped')

  const text = (name: string): string => `{ ${name} }` + ' '.repeat(995) // 1,000 bytes
  const byBytes = createDocumentCache({ max: 100, maxCachedBytes: 3000 })
  for (const name of ['a', 'b', 'c', 'd', 'e']) byBytes.parse(text(name))
  assert.equal(byBytes.size, 3)
  const kept = byBytes.parse(text('e'))
  assert.equal(byBytes.parse(text('e')), kept)
})

test('the cache reads its limits and refuses nonsense ones', () => {
  const cache = createDocumentCache({ limits: { maxDepth: 2 } })
  accepted(cache.parse('{ a { b } }'))
  assert.match(refused(cache.parse('{ a { b { c } } }')).message, /has depth 3; the gate allows at most 2 \(GATE_GRAPHQL_MAX_DEPTH\)/)
  assert.throws(() => createDocumentCache({ limits: { maxDepth: 0 } }), /maxDepth must be a whole number of at least 1/)
  assert.throws(() => createDocumentCache({ limits: { maxTokens: 1.5 } }), /maxTokens/)
})

test('the settings give the limits; their defaults are the module\'s', () => {
  const defaults = documentLimitsOf(loadConfig({}))
  assert.deepEqual(defaults, { maxBytes: DEFAULT_DOCUMENT_LIMITS.maxBytes, maxTokens: DEFAULT_DOCUMENT_LIMITS.maxTokens, maxDepth: DEFAULT_DOCUMENT_LIMITS.maxDepth })
  const cache = createDocumentCache({ limits: documentLimitsOf(loadConfig({ GATE_GRAPHQL_MAX_DEPTH: '1', GATE_GRAPHQL_MAX_TOKENS: '6', GATE_GRAPHQL_MAX_BYTES: '8' })) })
  accepted(cache.parse('{ a }'))
  assert.match(refused(cache.parse('{a b c d}')).message, /has 9 bytes; the gate allows at most 8 \(GATE_GRAPHQL_MAX_BYTES\)/)
  assert.match(refused(cache.parse('{a{b c}}')).message, /more than 6 tokens; the gate allows at most 6 \(GATE_GRAPHQL_MAX_TOKENS\)/)
  assert.match(refused(cache.parse('{a{b}}')).message, /has depth 2; the gate allows at most 1 \(GATE_GRAPHQL_MAX_DEPTH\)/)
  assert.throws(() => loadConfig({ GATE_GRAPHQL_MAX_DEPTH: '0' }), /GATE_GRAPHQL_MAX_DEPTH must be at least 1/)
})
