// GraphQL documents as the gate reads them: refused over a limit before anything walks them,
// parsed once, and cached by the hash of their text.
//
// The limits follow GitLab's own, so that a document GitLab would run is never refused here:
// - bytes: GitLab refuses a query over 10,000 characters (GraphqlController::MAX_QUERY_SIZE,
//   "Query too large"); a character is at most 4 bytes of UTF-8, so 40,000 bytes;
// - tokens: graphql-js's `maxTokens`; comments are no tokens and every token is at least one
//   character, so 10,000 tokens hold every document GitLab takes;
// - depth: GitlabSchema::AUTHENTICATED_MAX_DEPTH (20; 15 for anonymous callers), counted as
//   graphql-ruby counts it: a root field is 1, each nested field one more, fragments followed.
// Bracket nesting is bounded too, before parsing: graphql-js parses by recursion, and a few
// thousand nested braces overflow the stack (a RangeError, not a GraphQLError).

import { createHash } from 'node:crypto'
import { BREAK, GraphQLError, Kind, Lexer, Source, TokenKind, parse, visit, type DocumentNode, type FragmentDefinitionNode, type SelectionNode } from 'graphql'
import { LRUCache } from 'lru-cache'
import { lexDifferenceAt, mayLexDifferently, type LexDifference } from '../admin/graphql.ts'
import type { Config } from '../config.ts'

export interface DocumentLimits {
  /** UTF-8 bytes of the document text (GATE_GRAPHQL_MAX_BYTES). */
  readonly maxBytes: number
  /** graphql-js tokens (GATE_GRAPHQL_MAX_TOKENS). */
  readonly maxTokens: number
  /** Field nesting, fragments followed (GATE_GRAPHQL_MAX_DEPTH). */
  readonly maxDepth: number
  /** Aliased fields as written; no limit when absent. */
  readonly maxAliases?: number
  /**
   * Fields once every fragment spread is expanded where it is spread. A few fragments that
   * spread each other twice expand to millions of fields while the text stays small; anything
   * that reads the document fragment by fragment at each spread would walk them all. GitLab's
   * complexity limit (a few hundred) refuses such documents long before this bound.
   */
  readonly maxExpandedFields: number
}

export const DEFAULT_DOCUMENT_LIMITS: DocumentLimits = Object.freeze({
  maxBytes: 40_000,
  maxTokens: 10_000,
  maxDepth: 20,
  maxExpandedFields: 10_000
})

/** The limits GATE_GRAPHQL_MAX_BYTES, GATE_GRAPHQL_MAX_TOKENS and GATE_GRAPHQL_MAX_DEPTH set. */
export function documentLimitsOf (config: Pick<Config, 'graphqlMaxBytes' | 'graphqlMaxTokens' | 'graphqlMaxDepth'>): Partial<DocumentLimits> {
  return { maxBytes: config.graphqlMaxBytes, maxTokens: config.graphqlMaxTokens, maxDepth: config.graphqlMaxDepth }
}

/** Brackets ({ [ and ( together) nested deeper than maxDepth plus this are refused before parsing. */
export const BRACKET_ALLOWANCE = 100

export type DocumentErrorCode = 'GRAPHQL_DOCUMENT_TOO_LARGE' | 'GRAPHQL_DOCUMENT_TOO_DEEP' | 'GRAPHQL_DOCUMENT_INVALID' | 'GRAPHQL_DOCUMENT_AMBIGUOUS'

export type DocumentResult =
  | { readonly ok: true, readonly document: DocumentNode, readonly hash: string, readonly tokens: number }
  | { readonly ok: false, readonly code: DocumentErrorCode, readonly message: string, readonly hash?: string }

export interface DocumentCache {
  /**
   * The document parsed without locations (`loc` is absent: errors of later walks carry no
   * line and column). Hot path: a hash and a map read when the text was seen before. The
   * result is shared between requests: never mutate it.
   */
  parse (text: string): DocumentResult
  /** Documents (and refusals) cached. */
  readonly size: number
}

/** The settings that set each limit, named in the messages. */
const SETTING = {
  maxBytes: 'GATE_GRAPHQL_MAX_BYTES',
  maxTokens: 'GATE_GRAPHQL_MAX_TOKENS',
  maxDepth: 'GATE_GRAPHQL_MAX_DEPTH'
} as const

function refusal (code: DocumentErrorCode, message: string, hash?: string): DocumentResult {
  return Object.freeze(hash === undefined ? { ok: false as const, code, message } : { ok: false as const, code, message, hash })
}

/** The sha256 of the text (UTF-8), hex: the cache key and the document's identity in logs. */
export function documentHash (text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/**
 * Reads a document under the limits, without the cache. The text's size is checked first, then
 * one pass of graphql-js's lexer (a loop, no recursion) counts tokens and bracket nesting, and
 * only then does the recursive parser run; depth is measured without recursion.
 */
export function readDocument (text: string, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS, hash?: string): DocumentResult {
  // A UTF-16 code unit is at least one UTF-8 byte: a string far longer than the limit is not
  // measured, only said to be over it.
  const far = text.length > 4 * limits.maxBytes
  const bytes = far ? text.length : Buffer.byteLength(text, 'utf8')
  if (bytes > limits.maxBytes) {
    return refusal('GRAPHQL_DOCUMENT_TOO_LARGE', `the GraphQL document has ${far ? 'at least ' : ''}${bytes} bytes; the gate allows at most ${limits.maxBytes} (${SETTING.maxBytes})`, hash)
  }
  const maxBrackets = limits.maxDepth + BRACKET_ALLOWANCE
  const scan = scanTokens(text, limits.maxTokens, maxBrackets)
  if (scan.kind === 'tokens') {
    return refusal('GRAPHQL_DOCUMENT_TOO_LARGE', `the GraphQL document has more than ${limits.maxTokens} tokens; the gate allows at most ${limits.maxTokens} (${SETTING.maxTokens})`, hash)
  }
  if (scan.kind === 'brackets') {
    return refusal('GRAPHQL_DOCUMENT_TOO_DEEP', `the GraphQL document nests brackets more than ${maxBrackets} deep (line ${scan.line}); the gate reads at most ${maxBrackets} ({, [ and ( together: ${SETTING.maxDepth} plus ${BRACKET_ALLOWANCE})`, hash)
  }
  if (scan.kind === 'syntax') return refusal('GRAPHQL_DOCUMENT_INVALID', syntaxMessage(scan.error), hash)
  if (scan.kind === 'ambiguous') {
    return refusal('GRAPHQL_DOCUMENT_AMBIGUOUS', `GitLab's parser would read the GraphQL document otherwise than the gate: on line ${scan.difference.line}, ${scan.difference.what}`, hash)
  }

  let document: DocumentNode
  try {
    document = parse(text, { maxTokens: limits.maxTokens, noLocation: true })
  } catch (err) {
    if (err instanceof GraphQLError) return refusal('GRAPHQL_DOCUMENT_INVALID', syntaxMessage(err), hash)
    throw err
  }

  const shape = measure(document)
  if (shape.kind === 'invalid') return refusal('GRAPHQL_DOCUMENT_INVALID', shape.message, hash)
  const repeated = repeatedName(document)
  if (repeated !== null) return refusal('GRAPHQL_DOCUMENT_INVALID', repeated, hash)
  if (shape.depth > limits.maxDepth) {
    return refusal('GRAPHQL_DOCUMENT_TOO_DEEP', `the GraphQL document has depth ${shape.depth}; the gate allows at most ${limits.maxDepth} (${SETTING.maxDepth})`, hash)
  }
  if (shape.expandedFields > limits.maxExpandedFields) {
    return refusal('GRAPHQL_DOCUMENT_TOO_LARGE', `the GraphQL document selects ${shape.expandedFields === Number.MAX_SAFE_INTEGER ? 'more than 9007199254740991' : shape.expandedFields} fields once its fragments are expanded; the gate allows at most ${limits.maxExpandedFields}`, hash)
  }
  if (limits.maxAliases !== undefined && shape.aliases > limits.maxAliases) {
    return refusal('GRAPHQL_DOCUMENT_TOO_LARGE', `the GraphQL document has ${shape.aliases} aliased fields; the gate allows at most ${limits.maxAliases}`, hash)
  }
  return Object.freeze({ ok: true as const, document, hash: hash ?? documentHash(text), tokens: scan.tokens })
}

function syntaxMessage (err: GraphQLError): string {
  const at = err.locations?.[0]
  return `the GraphQL document is not valid${at === undefined ? '' : ` at line ${at.line}, column ${at.column}`}: ${err.message}`
}

type Scan =
  | { readonly kind: 'ok', readonly tokens: number }
  | { readonly kind: 'tokens' }
  | { readonly kind: 'brackets', readonly line: number }
  | { readonly kind: 'syntax', readonly error: GraphQLError }
  | { readonly kind: 'ambiguous', readonly difference: LexDifference }

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L])
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R])

/**
 * One pass of the lexer: tokens counted as graphql-js's maxTokens counts them (all but <EOF>),
 * and the first place graphql-ruby would cut the text into other tokens (lexDifferenceAt).
 */
function scanTokens (text: string, maxTokens: number, maxBrackets: number): Scan {
  const lexer = new Lexer(new Source(text))
  let tokens = 0
  let nesting = 0
  const mayDiffer = mayLexDifferently(text)
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > maxTokens) return { kind: 'tokens' }
      const difference = mayDiffer ? lexDifferenceAt(text, token) : null
      if (difference !== null) return { kind: 'ambiguous', difference }
      if (OPENING.has(token.kind)) {
        if (++nesting > maxBrackets) return { kind: 'brackets', line: token.line }
      } else if (CLOSING.has(token.kind)) {
        nesting--
      }
    }
  } catch (err) {
    if (err instanceof GraphQLError) return { kind: 'syntax', error: err }
    throw err
  }
  return { kind: 'ok', tokens }
}

type Shape =
  | { readonly kind: 'ok', readonly depth: number, readonly expandedFields: number, readonly aliases: number }
  | { readonly kind: 'invalid', readonly message: string }

interface Measured { readonly depth: number, readonly fields: number }

/** One selection set being measured: where it is, and what its finished children gave. */
interface Frame {
  readonly selections: readonly SelectionNode[]
  next: number
  depth: number
  fields: number
  /** Added to the parent: 1 for a field's selection set, 0 for fragments. */
  readonly nesting: number
  /** The fragment whose body this frame is, measured once and remembered. */
  readonly fragment?: string
}

/**
 * Depth (deepest field nesting, fragments followed where they are spread), fields once every
 * spread is expanded (saturating), and aliases as written. Every fragment is measured once
 * (memoized), so this is linear in the document however its fragments spread each other.
 * Iterative: the document may nest as deep as the bracket bound allows. A fragment that
 * spreads itself, directly or through others, or an unknown fragment, makes it invalid, as
 * GraphQL's validation rules (NoFragmentCycles, KnownFragmentNames) do.
 */
function measure (document: DocumentNode): Shape {
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.FRAGMENT_DEFINITION) continue
    if (fragments.has(definition.name.value)) return { kind: 'invalid', message: `the GraphQL document defines fragment ${definition.name.value} more than once` }
    fragments.set(definition.name.value, definition)
  }
  const measured = new Map<string, Measured>()
  const inProgress = new Set<string>()
  let aliases = 0

  const walk = (root: readonly SelectionNode[], rootFragment?: string): Measured | string => {
    const stack: Frame[] = [{ selections: root, next: 0, depth: 0, fields: 0, nesting: 0, ...(rootFragment === undefined ? {} : { fragment: rootFragment }) }]
    if (rootFragment !== undefined) inProgress.add(rootFragment)
    let result: Measured = { depth: 0, fields: 0 }
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!
      if (frame.next === frame.selections.length) {
        stack.pop()
        const done: Measured = { depth: frame.depth, fields: frame.fields }
        if (frame.fragment !== undefined) {
          inProgress.delete(frame.fragment)
          measured.set(frame.fragment, done)
        }
        const parent = stack[stack.length - 1]
        if (parent === undefined) result = done
        else {
          parent.depth = Math.max(parent.depth, frame.nesting + done.depth)
          parent.fields = Math.min(Number.MAX_SAFE_INTEGER, parent.fields + done.fields)
        }
        continue
      }
      const selection = frame.selections[frame.next++]!
      if (selection.kind === Kind.FIELD) {
        // The field itself; its selection set, if any, is a frame that adds its fields and depth.
        if (selection.alias !== undefined) aliases++
        frame.fields = Math.min(Number.MAX_SAFE_INTEGER, frame.fields + 1)
        frame.depth = Math.max(frame.depth, 1)
        if (selection.selectionSet !== undefined) stack.push({ selections: selection.selectionSet.selections, next: 0, depth: 0, fields: 0, nesting: 1 })
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        stack.push({ selections: selection.selectionSet.selections, next: 0, depth: 0, fields: 0, nesting: 0 })
      } else {
        const name = selection.name.value
        const known = measured.get(name)
        if (known !== undefined) {
          frame.depth = Math.max(frame.depth, known.depth)
          frame.fields = Math.min(Number.MAX_SAFE_INTEGER, frame.fields + known.fields)
          continue
        }
        if (inProgress.has(name)) {
          const chain = [...stack.filter(f => f.fragment !== undefined).map(f => f.fragment!), name]
          return `the GraphQL document spreads fragment ${name} within itself (${chain.slice(chain.indexOf(name)).join(' → ')}); fragments may not form cycles`
        }
        const definition = fragments.get(name)
        if (definition === undefined) return `the GraphQL document spreads fragment ${name}, which it does not define`
        inProgress.add(name)
        stack.push({ selections: definition.selectionSet.selections, next: 0, depth: 0, fields: 0, nesting: 0, fragment: name })
      }
    }
    return result
  }

  let depth = 0
  let expandedFields = 0
  for (const definition of document.definitions) {
    let result: Measured | string
    if (definition.kind === Kind.OPERATION_DEFINITION) result = walk(definition.selectionSet.selections)
    else if (definition.kind === Kind.FRAGMENT_DEFINITION) {
      const known = measured.get(definition.name.value)
      result = known ?? walk(definition.selectionSet.selections, definition.name.value)
      // A fragment's fields count where it is spread, not where it is defined.
      if (typeof result !== 'string') result = { depth: result.depth, fields: 0 }
    } else {
      return { kind: 'invalid', message: `the GraphQL document has a ${definition.kind} definition; a request may hold only operations and fragments` }
    }
    if (typeof result === 'string') return { kind: 'invalid', message: result }
    depth = Math.max(depth, result.depth)
    expandedFields = Math.min(Number.MAX_SAFE_INTEGER, expandedFields + result.fields)
  }
  return { kind: 'ok', depth, expandedFields, aliases }
}

/**
 * A name given twice where GraphQL allows it once, as GitLab's validation finds it: two
 * arguments of one field or directive, two fields of one input object, two variables or two
 * operations of one name (UniqueArgumentNames, UniqueInputFieldNames, UniqueVariableNames,
 * UniqueOperationNames). GitLab refuses such a document; the gate would otherwise read the
 * last value of a repeated argument and check one project while another one was written
 * first. Null when there is none.
 */
export function repeatedName (document: DocumentNode): string | null {
  let found: string | null = null
  const once = (names: ReadonlyArray<{ readonly name: { readonly value: string } }>, message: (name: string) => string): void => {
    if (names.length < 2 || found !== null) return
    const seen = new Set<string>()
    for (const { name: { value } } of names) {
      if (seen.has(value)) {
        found = `the GraphQL document ${message(value)}; GraphQL allows each name there once`
        return
      }
      seen.add(value)
    }
  }
  const named: Array<{ readonly name: { readonly value: string } }> = []
  for (const d of document.definitions) if (d.kind === Kind.OPERATION_DEFINITION && d.name !== undefined) named.push({ name: d.name })
  once(named, name => `names two operations ${name}`)
  if (found !== null) return found
  const stop = (): typeof BREAK | undefined => found === null ? undefined : BREAK
  visit(document, {
    OperationDefinition: node => { once(node.variableDefinitions?.map(v => v.variable) ?? [], name => `declares the variable $${name} twice`); return stop() },
    Field: node => { once(node.arguments ?? [], name => `gives field ${node.name.value} the argument ${name} twice`); return stop() },
    Directive: node => { once(node.arguments ?? [], name => `gives directive @${node.name.value} the argument ${name} twice`); return stop() },
    ObjectValue: node => { once(node.fields, name => `gives an input object the field ${name} twice`); return stop() }
  })
  return found
}

/** Options for createDocumentCache. */
export interface DocumentCacheOptions {
  readonly limits?: Partial<DocumentLimits>
  /** Most documents (and refusals) kept. */
  readonly max?: number
  /** Most bytes of document text kept (DEFAULT_MAX_CACHED_BYTES). */
  readonly maxCachedBytes?: number
}

/**
 * Text bytes the cache keeps by default. A parsed document takes about 30 times its text in
 * memory (graphql-js's AST, parsed without locations: they would hold every token and more
 * than double it), so 2 MiB of text is about 60 MB at most; applications send a few hundred
 * distinct documents of a few KB.
 */
export const DEFAULT_MAX_CACHED_BYTES = 2 * 1024 * 1024

/**
 * Bytes of text a token counts as at least. A token's AST takes up to about 180 bytes, six
 * times the 30 per byte of text above: `{ a a a ... }`, 10,000 tokens in 20 KB, takes 1.8 MB,
 * and counted by its text alone 2 MiB of such documents held 180 MiB.
 */
const TOKEN_BYTES = 6

/** A refusal is kept as this many bytes: its message and the entry. */
const REFUSAL_SIZE = 512

interface Entry { readonly result: DocumentResult, readonly size: number }

/**
 * Documents read under the limits and cached by sha256 of their text, successes and refusals
 * alike, in an LRU bounded by count and by the bytes of the texts kept. A text over maxBytes is
 * refused before it is hashed and is not kept.
 */
export function createDocumentCache (options: DocumentCacheOptions = {}): DocumentCache {
  const limits: DocumentLimits = Object.freeze({ ...DEFAULT_DOCUMENT_LIMITS, ...options.limits })
  for (const key of ['maxBytes', 'maxTokens', 'maxDepth', 'maxExpandedFields'] as const) {
    if (!Number.isSafeInteger(limits[key]) || limits[key] < 1) throw new RangeError(`document limit ${key} must be a whole number of at least 1, got ${limits[key]}`)
  }
  if (limits.maxAliases !== undefined && (!Number.isSafeInteger(limits.maxAliases) || limits.maxAliases < 0)) throw new RangeError(`document limit maxAliases must be a whole number, got ${limits.maxAliases}`)
  const cache = new LRUCache<string, Entry>({
    max: options.max ?? 1000,
    maxSize: options.maxCachedBytes ?? DEFAULT_MAX_CACHED_BYTES,
    sizeCalculation: entry => entry.size
  })

  return {
    parse (text: string): DocumentResult {
      // Hot path: a text too large is refused before hashing; a known text is one hash and one map read.
      if (text.length > limits.maxBytes) return readDocument(text, limits)
      const hash = documentHash(text)
      const hit = cache.get(hash)
      if (hit !== undefined) return hit.result
      const result = readDocument(text, limits, hash)
      cache.set(hash, { result, size: result.ok ? Math.max(1, Buffer.byteLength(text, 'utf8'), TOKEN_BYTES * result.tokens) : REFUSAL_SIZE })
      return result
    },
    get size () { return cache.size }
  }
}
