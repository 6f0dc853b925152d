// The compiled route trie: method + canonical API path → catalog entry, parameters, policies.
//
// find-my-way holds every route as far as it can express it: whole static segments and
// whole-segment parameters. Where a GitLab pattern goes on with something it cannot express
// (a glob in the middle, a literal after a parameter, a glob glued to a literal), the route is
// registered as that prefix plus a find-my-way wildcard, and a small matcher over the
// remaining segments finishes the job. Lookup cost is one trie walk plus the few leaf
// matchers registered under the node it reaches, whatever the catalog's size.
//
// Precedence (see src/catalog/pattern.ts): static before parameter before glob, segment by segment. That
// is find-my-way's own order, so its first answer is right except where (a) its answer's leaf
// matchers all fail (it cannot backtrack into them), or (b) a route whose leaf starts with a
// `:param.suffix` competes with a plain parameter at the same segment. Both are settled at
// compile time: each trie node keeps the few other routes that can match paths reaching it.

import FindMyWay from 'find-my-way'
import type { CatalogRoute } from '../catalog/types.ts'
import { decodeParam } from './canonical.ts'
import { matchRefRoute, refRoutesOf, type RefRoutes } from './ref-routes.ts'
import { commonPath } from './overlap.ts'
import { FORMAT_SUFFIX, RANK, globOpens, paramAccepts, parsePattern, type Token, type Variant } from '../catalog/pattern.ts'
import { ownString } from '../text.ts'

export interface RouteMatch {
  readonly route: CatalogRoute
  /** Parameters decoded exactly once (`group%2Fapp` → `group/app`); a null-prototype object. */
  readonly params: Readonly<Record<string, string>>
  /** The request named the `.json` format, which Grape strips before the last parameter. */
  readonly format: boolean
}

interface CompiledVariant {
  readonly route: CatalogRoute
  readonly tokens: readonly Token[]
  readonly format: boolean
  /** Position in catalog order: the tie-break between equal precedence keys. */
  readonly order: number
  /** Tokens find-my-way matches (static and plain whole-segment parameters). */
  readonly trieLength: number
  /** find-my-way's path shape, parameters unnamed: variants with equal shapes share a node. */
  readonly trieKey: string
  /** find-my-way's registered path, with this variant's parameter names. */
  readonly triePath: string
  /** Names of the trie parameters that must not contain '.' (Grape integer ids). */
  readonly noDots: readonly string[]
  /** The variant is fully expressed by find-my-way. */
  readonly exact: boolean
  /** Smallest number of segments tokens[i..] can match. */
  readonly minSegments: readonly number[]
  /** Index of the last glob token, -1 without one: every token after it takes exactly one segment. */
  readonly lastGlob: number
}

interface TrieNode {
  readonly own: CompiledVariant[]
  /** `own` and the other variants that may beat it on the same path (case b above). */
  readonly contenders: CompiledVariant[]
  /** Every other variant that can match a path reaching this node (case a above). */
  readonly fallback: CompiledVariant[]
  /** Fast path: one exact variant and no competitor. */
  single: CompiledVariant | null
}

function isTrieToken (token: Token): boolean {
  return token.kind === 'static' || (token.kind === 'param' && token.suffix === '')
}

function compileVariant (route: CatalogRoute, variant: Variant, order: number): CompiledVariant {
  const { tokens } = variant
  let trieLength = 0
  while (trieLength < tokens.length && isTrieToken(tokens[trieLength]!)) trieLength++
  const exact = trieLength === tokens.length
  const trieTokens = tokens.slice(0, trieLength)
  const join = (parts: string[]): string => '/' + parts.join('/') + (exact ? '' : (parts.length > 0 ? '/*' : '*'))
  const trieKey = join(trieTokens.map(t => t.kind === 'static' ? t.value : ':'))
  const triePath = join(trieTokens.map(t => t.kind === 'static' ? t.value : `:${t.name}`))
  const noDots = trieTokens.flatMap(t => t.kind === 'param' && !t.dots ? [t.name] : [])
  const minSegments = new Array<number>(tokens.length + 1).fill(0)
  for (let i = tokens.length - 1; i >= 0; i--) minSegments[i] = minSegments[i + 1]! + 1
  const lastGlob = tokens.findLastIndex(t => t.kind === 'glob')
  return { route, tokens, format: variant.format, order, trieLength, trieKey, triePath, noDots, exact, minSegments, lastGlob }
}

/** The paths find-my-way sends to a node, as tokens: its key with any segment for parameters and wildcard. */
function trieSpace (variant: CompiledVariant): Token[] {
  const space: Token[] = variant.tokens.slice(0, variant.trieLength).map(t =>
    t.kind === 'static' ? t : { kind: 'param', name: 'p', dots: true, suffix: '' })
  if (!variant.exact) space.push({ kind: 'glob', name: 'rest', prefix: '' })
  return space
}

/**
 * Whether find-my-way's choice of `node` over `other` on a path both match is certain to agree
 * with the precedence key. The first segment where their trie keys differ decides: there
 * find-my-way tried static, then parameter, then wildcard, the key's own order, except where
 * `node` has a parameter and `other` a wildcard whose route goes on with a parameter
 * (`:v.mod`): the key ranks those equal and later segments decide.
 */
function trieOrderDecides (node: CompiledVariant, other: CompiledVariant): boolean {
  for (let i = 0; ; i++) {
    const a = i < node.trieLength ? node.tokens[i]! : null
    const b = i < other.trieLength ? other.tokens[i]! : null
    // One key ends here. If it is exact, the two cannot match the same path; if `node` goes
    // on with a wildcard while `other` has a segment token, find-my-way would have answered
    // `other`; if `other` goes on with a wildcard, `node`'s segment token was tried first.
    if (a === null || b === null) {
      if (b === null && a !== null && !other.exact) return a.kind === 'static' || other.tokens[i]!.kind === 'glob'
      return true
    }
    if (a.kind === b.kind && (a.kind !== 'static' || a.value === (b as typeof a).value)) continue
    // Two statics cannot both match; a static against a parameter was tried first by
    // find-my-way and ranks first in the key, whichever side it is on.
    return true
  }
}

/**
 * Matches of the slow path (leaf matchers, globs) kept per router, by method and path. Bounded:
 * past MATCH_CACHE_MAX entries the oldest goes (insertion order), so hostile paths cost a bounded
 * map; paths longer than MATCH_CACHE_MAX_PATH are never kept. A CI job calls the same few package,
 * artifact and release URLs again and again, so the hit rate of real traffic is high.
 */
const MATCH_CACHE_MAX = 4096
const MATCH_CACHE_MAX_PATH = 512

/** A match's parameters in strings of their own (ownString), frozen, null-prototype. */
function ownParams (params: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const own = Object.create(null) as Record<string, string>
  for (const name in params) own[name] = ownString(params[name]!)
  return Object.freeze(own)
}

export interface RouterOptions {
  /**
   * The canonical path the API's paths sit under (`/api/v4`, or the relative URL root's
   * `/gitlab/api/v4`): routes are held under it, so that matchRequest() looks up a request's
   * whole canonical path. Default '': routes at the root, only match() by API path.
   */
  readonly mount?: string
}

/** How many of a last segment's '.' from its end are tried as the format's start, before its first (otherFormat). */
const FORMAT_DOTS_FROM_END = 4

/** Routers of frozen route lists, by list and mount (Router.compile). */
const compiled = new WeakMap<readonly CatalogRoute[], Map<string, Router>>()

export class Router {
  private readonly trie: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>
  readonly routes: readonly CatalogRoute[]
  private readonly mount: string
  /** Results shared between requests are frozen, params included. */
  private readonly matches = new Map<string, RouteMatch | null>()
  /** The job artifact routes by ref, whose ref may span segments (src/routing/ref-routes.ts). */
  private readonly refRoutes: RefRoutes | null

  private constructor (routes: readonly CatalogRoute[], options: RouterOptions) {
    this.routes = routes
    this.refRoutes = refRoutesOf(routes)
    // find-my-way would read ':', '*' or '(' of a relative URL root as a parameter, a wildcard or a
    // pattern, and decodes a request's escapes before walking its static segments ('%20' of a
    // root, registered as written, would never match): such a root is not mounted, and its
    // requests are matched by their API path.
    this.mount = /[:*(%]/.test(options.mount ?? '') ? '' : options.mount ?? ''
    this.trie = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 1 << 20 })
    const variants: CompiledVariant[] = []
    routes.forEach(route => {
      for (const variant of parsePattern(route.pattern)) variants.push(compileVariant(route, variant, variants.length))
    })
    const nodes = new Map<string, TrieNode>()
    for (const variant of variants) {
      const key = `${variant.route.method} ${variant.trieKey}`
      let node = nodes.get(key)
      if (node === undefined) {
        node = { own: [], contenders: [], fallback: [], single: null }
        nodes.set(key, node)
        this.trie.on(variant.route.method, this.mount + variant.triePath, noop, node)
      }
      node.own.push(variant)
    }
    for (const node of nodes.values()) {
      const head = node.own[0]!
      const space = trieSpace(head)
      for (const other of variants) {
        if (other.route.method !== head.route.method || node.own.includes(other)) continue
        if (commonPath(space, other.tokens) === null) continue
        node.fallback.push(other)
        if (!trieOrderDecides(head, other) && node.own.some(own => commonPath(own.tokens, other.tokens) !== null)) node.contenders.push(other)
      }
      const competitors = node.contenders.splice(0)
      node.contenders.push(...(competitors.length === 0 ? [] : node.own), ...competitors)
      node.single = node.own.length === 1 && head.exact && competitors.length === 0 ? head : null
    }
  }

  /**
   * A frozen route list (a loaded catalog's) compiles to the same router every time: the gates of
   * one process, and a reload that changed nothing, share it (its match cache holds frozen results).
   */
  static compile (routes: readonly CatalogRoute[], options: RouterOptions = {}): Router {
    if (!Object.isFrozen(routes)) return new Router(routes, options)
    let byMount = compiled.get(routes)
    if (byMount === undefined) compiled.set(routes, byMount = new Map())
    const mount = options.mount ?? ''
    let router = byMount.get(mount)
    if (router === undefined) byMount.set(mount, router = new Router(routes, options))
    return router
  }

  /** The route of `method` (the routing method: HEAD already GET) and `apiPath`, the canonical path after `/api/v4`. */
  match (method: string, apiPath: string): RouteMatch | null {
    return this.find(method, this.mount === '' ? apiPath : this.mount + apiPath, apiPath) ?? this.otherFormat(method, apiPath)
  }

  /**
   * Hot path: the route of a canonical API request, as match(). With the router mounted where the
   * canonicalizer puts the API, find-my-way walks the request's own path: the API path is a
   * slice of it, which V8 keeps as a view of the target and reads a little slower on every
   * character than the target itself (4% of a lookup counted, bench:match:count).
   */
  matchRequest (request: { readonly method: string, readonly path: string, readonly apiPath: string }): RouteMatch | null {
    const { path, apiPath } = request
    // The whole path only where it is the mount followed by the API path (`/api/v4` alone is API path '/').
    if (path.length === this.mount.length + apiPath.length && path.startsWith(this.mount)) return this.find(request.method, path, apiPath) ?? this.otherFormat(request.method, apiPath)
    return this.match(request.method, apiPath)
  }

  /**
   * A path no route takes as it is, read with its last segment's extension as the format: GitLab's
   * API declares two content types, so Grape appends `(.:format)` to every route and splits any
   * extension off (`/packages/5.xml`, `.txt`, `.%2E`, `.%2F`), then answers in JSON whatever it
   * was. The routes hold the `.json` form, so the extension is read as `.json`: the route Grape
   * runs is the one decided (a Developer's `DELETE /projects/:id/packages/5.xml` deleted the
   * package past the users' delete rule). Grape's format takes no '.', but the canonical path has
   * escaped dots decoded (`.%2E` is `..` here), so the format may start at an earlier '.': the
   * last few are tried, the last first (a literal with dots before the format: `Release.gpg.txt`),
   * then the segment's first, where a parameter that takes no '.' ends (every route that writes or
   * deletes packages ends so). Not every '.': a segment of thousands would cost as many lookups.
   * A path GitLab routes nowhere may be decided; one it runs as a package change is never left
   * undecided.
   */
  private otherFormat (method: string, apiPath: string): RouteMatch | null {
    const slash = apiPath.lastIndexOf('/')
    // Grape's format follows a parameter or literal of one character at least.
    const first = apiPath.indexOf('.', slash + 2)
    if (first === -1) return null
    // Users' API calls through the gate miss the catalog with a dot often (`archive.zip`, file
    // paths): what their extensions read as is kept with the other matches, not looked up again
    // (one to five trie walks, 1 to 3 µs).
    if (apiPath.length > MATCH_CACHE_MAX_PATH) return this.otherFormatOf(method, apiPath, slash, first)
    const key = 'format ' + method + ' ' + apiPath
    const cached = this.matches.get(key)
    if (cached !== undefined) return cached
    const found = this.otherFormatOf(method, apiPath, slash, first)
    const match = found === null ? null : Object.isFrozen(found) ? found : Object.freeze({ ...found, params: ownParams(found.params) })
    if (this.matches.size >= MATCH_CACHE_MAX) this.matches.delete(this.matches.keys().next().value!)
    this.matches.set(ownString(key), match)
    return match
  }

  private otherFormatOf (method: string, apiPath: string, slash: number, first: number): RouteMatch | null {
    let tried = apiPath.length
    for (let dot = apiPath.lastIndexOf('.'), n = 0; dot >= first && n < FORMAT_DOTS_FROM_END; dot = apiPath.lastIndexOf('.', dot - 1), n++) {
      const found = this.asFormat(method, apiPath, dot)
      if (found !== null) return found
      tried = dot
    }
    return tried > first ? this.asFormat(method, apiPath, first) : null
  }

  /** The route of `apiPath` with everything from its '.' at `dot` read as the `.json` format. */
  private asFormat (method: string, apiPath: string, dot: number): RouteMatch | null {
    const asJson = apiPath.slice(0, dot) + FORMAT_SUFFIX
    if (asJson === apiPath) return null
    return this.find(method, this.mount === '' ? asJson : this.mount + asJson, asJson)
  }

  /**
   * Hot path: runs on every API request. `triePath` is `apiPath` under the mount. The common case
   * is one find-my-way walk and, for an exact node, a check that integer parameters hold no '.';
   * no path split.
   */
  private find (method: string, triePath: string, apiPath: string): RouteMatch | null {
    const found = this.trie.find(method as FindMyWay.HTTPMethod, triePath)
    if (found === null) return method === 'GET' && this.refRoutes !== null ? matchRefRoute(this.refRoutes, apiPath) : null
    const node = found.store as TrieNode
    const single = node.single
    if (single !== null) {
      // The node was registered with this variant's names, so find-my-way's params (decoded
      // once, a fresh object per call) are the answer as they are.
      const params = found.params as Record<string, string>
      const noDots = single.noDots
      for (let i = 0; i < noDots.length; i++) {
        if (params[noDots[i]!]!.includes('.')) return this.best(node.fallback, splitSegments(apiPath))
      }
      return { route: single.route, params, format: single.format }
    }
    if (apiPath.length > MATCH_CACHE_MAX_PATH) return this.slowMatch(node, method, apiPath)
    const key = method + ' ' + apiPath
    const cached = this.matches.get(key)
    if (cached !== undefined) return cached
    const slow = this.slowMatch(node, method, apiPath)
    // The path and the parameters cut from it are slices of the request's target: kept as they
    // are, each entry kept a whole target, query and all, where the bound counts 512 characters.
    const match = slow === null ? null : Object.freeze({ ...slow, params: ownParams(slow.params) })
    if (this.matches.size >= MATCH_CACHE_MAX) this.matches.delete(this.matches.keys().next().value!)
    this.matches.set(ownString(key), match)
    return match
  }

  private slowMatch (node: TrieNode, method: string, apiPath: string): RouteMatch | null {
    const segments = splitSegments(apiPath)
    const own = this.best(node.own, segments)
    const match = own === null ? this.best(node.fallback, segments) : node.contenders.length === 0 ? own : this.best(node.contenders, segments)
    const refs = this.refRoutes
    // A ref spanning segments, or an archive path the raw file route also reads (GitLab's order).
    if (refs !== null && method === 'GET' && (match === null || match.route === refs.raw)) {
      const byRef = matchRefRoute(refs, apiPath)
      if (byRef !== null && (match === null || byRef.route === refs.download)) return byRef
    }
    return match
  }

  /** Of several candidates, the match with the smallest precedence key; catalog order breaks ties. */
  private best (candidates: readonly CompiledVariant[], segments: readonly string[]): RouteMatch | null {
    let bestVariant: CompiledVariant | null = null
    let bestEnds: Int32Array | null = null
    let bestKey = ''
    for (const variant of candidates) {
      const ends = matchSegments(variant, segments)
      if (ends === null) continue
      if (candidates.length === 1) return toMatch(variant, segments, ends)
      const key = precedenceKey(variant, ends)
      if (bestVariant === null || key < bestKey || (key === bestKey && variant.order < bestVariant.order)) {
        bestVariant = variant
        bestEnds = ends
        bestKey = key
      }
    }
    return bestVariant === null ? null : toMatch(bestVariant, segments, bestEnds!)
  }
}

function noop (): void {}

function splitSegments (apiPath: string): string[] {
  return apiPath.length <= 1 ? [] : apiPath.slice(1).split('/')
}

/**
 * Matches a variant against all segments; returns, per token, the index after its last
 * segment, or null. Globs try the fewest segments first (Mustermann's lazy `.*?`).
 */
function matchSegments (variant: CompiledVariant, segments: readonly string[]): Int32Array | null {
  if (segments.length < variant.minSegments[0]!) return null
  const ends = new Int32Array(variant.tokens.length)
  return step(variant, segments, 0, 0, ends) ? ends : null
}

function step (variant: CompiledVariant, segments: readonly string[], ti: number, si: number, ends: Int32Array): boolean {
  const { tokens } = variant
  if (ti === tokens.length) return si === segments.length
  if (si >= segments.length) return false
  const token = tokens[ti]!
  const segment = segments[si]!
  if (token.kind === 'static') {
    if (segment !== token.value) return false
  } else if (token.kind === 'param') {
    if (!paramAccepts(token, segment)) return false
  } else {
    if (!globOpens(token, segment)) return false
    const last = segments.length - variant.minSegments[ti + 1]!
    // After the last glob every token takes one segment, so only `last` can end it: trying every
    // end made a route with two globs quadratic in the number of segments (a PUT to
    // /projects/1/packages/generic/p/ plus 4,000 segments took 0.7 s to match).
    for (let end = ti === variant.lastGlob ? Math.max(si + 1, last) : si + 1; end <= last; end++) {
      ends[ti] = end
      if (step(variant, segments, ti + 1, end, ends)) return true
    }
    return false
  }
  ends[ti] = si + 1
  return step(variant, segments, ti + 1, si + 1, ends)
}

function precedenceKey (variant: CompiledVariant, ends: Int32Array): string {
  let key = ''
  let start = 0
  variant.tokens.forEach((token, i) => {
    key += String(RANK[token.kind]).repeat(ends[i]! - start)
    start = ends[i]!
  })
  return key
}

function toMatch (variant: CompiledVariant, segments: readonly string[], ends: Int32Array): RouteMatch {
  // Null prototype, like find-my-way's params on the fast path.
  const params: Record<string, string> = Object.create(null) as Record<string, string>
  let start = 0
  variant.tokens.forEach((token, i) => {
    const end = ends[i]!
    if (token.kind === 'param') {
      const segment = segments[start]!
      params[token.name] = decodeParam(segment.slice(0, segment.length - token.suffix.length))
    } else if (token.kind === 'glob') {
      params[token.name] = decodeParam(segments.slice(start, end).join('/').slice(token.prefix.length))
    }
    start = end
  })
  return { route: variant.route, params, format: variant.format }
}
