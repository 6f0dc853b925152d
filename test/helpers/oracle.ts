// A slow, deliberately plain reference matcher for the gate's routing semantics, written
// without src/catalog/pattern.ts or router.ts so the differential test compares two
// independent implementations. Speed does not matter here; obviousness does.
//
// Semantics (README.md "Routing"; docs/gitlab-rules.md, "Paths as Rails and Grape read them"):
// - `:name` one non-empty segment, optionally with a literal suffix (`:v.mod`);
//   `*name` one or more whole segments, optionally with a literal glued in front (`latest*p`);
//   `( ... )` optional groups, expanded WITH the group first, then without.
// - Parameters that cannot hold '.': `*_id`, `*_iid`, `id`, `serial`, except `id` right after
//   a `projects`, `groups` or `group` segment.
// - `.json` format variants follow all plain variants; a path no variant matches is matched
//   again with its last segment's extension read as `.json` (Grape takes any format), from
//   each of its last four '.', the last first, then from its first.
// - Per route and variant: the first decomposition of a lazy search; precedence key per path
//   segment (static 0, param 1, glob 2); smallest key wins, then catalog order, then variant order.

import type { CatalogRoute } from '../../src/catalog/types.ts'

export type OracleToken =
  | { kind: 'static', text: string }
  | { kind: 'param', name: string, suffix: string, dots: boolean }
  | { kind: 'glob', name: string, prefix: string }

export interface OracleVariant {
  tokens: OracleToken[]
  format: boolean
}

export interface OracleMatch {
  routeId: string
  params: Record<string, string>
  format: boolean
}

export interface Oracle {
  match (method: string, apiPath: string): OracleMatch | null
  /** Ids of every route (of that method) that has some variant matching the path, in catalog order. */
  allMatches (method: string, apiPath: string): string[]
}

/** All expansions of `( ... )` groups, the form with the group first. */
function expandGroups (pattern: string): string[] {
  const open = pattern.indexOf('(')
  if (open === -1) return [pattern]
  let depth = 0
  let close = -1
  for (let i = open; i < pattern.length; i++) {
    if (pattern[i] === '(') depth++
    if (pattern[i] === ')' && --depth === 0) { close = i; break }
  }
  if (close === -1) throw new Error(`unbalanced group in ${pattern}`)
  const before = pattern.slice(0, open)
  const inside = pattern.slice(open + 1, close)
  const after = pattern.slice(close + 1)
  return [...expandGroups(before + inside + after), ...expandGroups(before + after)]
}

function mayHoldDots (name: string, previous: OracleToken | undefined): boolean {
  if (name === 'id' && previous?.kind === 'static' && ['projects', 'groups', 'group'].includes(previous.text)) return true
  if (name === 'id' || name === 'serial' || name.endsWith('_id') || name.endsWith('_iid')) return false
  return true
}

function parseVariant (text: string): OracleToken[] {
  const body = text.endsWith('/') ? text.slice(0, -1) : text
  const tokens: OracleToken[] = []
  for (const segment of body.split('/').slice(1)) {
    if (segment.startsWith(':')) {
      const dot = segment.indexOf('.')
      const name = dot === -1 ? segment.slice(1) : segment.slice(1, dot)
      const suffix = dot === -1 ? '' : segment.slice(dot)
      tokens.push({ kind: 'param', name, suffix, dots: mayHoldDots(name, tokens[tokens.length - 1]) })
    } else if (segment.includes('*')) {
      const star = segment.indexOf('*')
      tokens.push({ kind: 'glob', name: segment.slice(star + 1), prefix: segment.slice(0, star) })
    } else {
      tokens.push({ kind: 'static', text: segment })
    }
  }
  return tokens
}

function variantText (tokens: readonly OracleToken[]): string {
  return tokens.map(t => t.kind === 'static' ? t.text : t.kind === 'param' ? `:${t.name}${t.suffix}` : `${t.prefix}*${t.name}`).join('/')
}

/** The `.json` form of a plain variant, or null when its last token swallows the suffix. */
function withFormat (tokens: readonly OracleToken[]): OracleToken[] | null {
  const last = tokens[tokens.length - 1]
  if (last === undefined) return null
  let replaced: OracleToken
  if (last.kind === 'static') replaced = { kind: 'static', text: last.text + '.json' }
  else if (last.kind === 'param' && (!last.dots || last.suffix !== '')) replaced = { ...last, suffix: last.suffix + '.json' }
  else return null
  return [...tokens.slice(0, -1), replaced]
}

/** Every variant of a pattern, in the order the oracle tries them. */
export function oracleVariants (pattern: string): OracleVariant[] {
  const out: OracleVariant[] = []
  const seen = new Set<string>()
  const add = (tokens: OracleToken[] | null, format: boolean): void => {
    if (tokens === null) return
    const text = variantText(tokens)
    if (seen.has(text)) return
    seen.add(text)
    out.push({ tokens, format })
  }
  const plain = expandGroups(pattern).map(parseVariant)
  for (const tokens of plain) add(tokens, false)
  for (const tokens of plain) add(withFormat(tokens), true)
  return out
}

function tokenTakesSegment (token: OracleToken, segment: string): boolean {
  if (token.kind === 'static') return segment === token.text
  if (token.kind === 'param') {
    if (!segment.endsWith(token.suffix)) return false
    const value = segment.slice(0, segment.length - token.suffix.length)
    return value !== '' && (token.dots || !value.includes('.'))
  }
  return segment.startsWith(token.prefix) && segment.length > token.prefix.length
}

/**
 * The first decomposition: for each token, how many segments it takes. Globs try 1, 2, 3, ...
 * segments in that order (lazy), so earlier globs take as few as possible.
 */
function decompose (tokens: readonly OracleToken[], segments: readonly string[], ti = 0, si = 0): number[] | null {
  if (ti === tokens.length) return si === segments.length ? [] : null
  const token = tokens[ti]!
  if (si >= segments.length || !tokenTakesSegment(token, segments[si]!)) return null
  const maxTake = token.kind === 'glob' ? segments.length - si : 1
  for (let take = 1; take <= maxTake; take++) {
    const rest = decompose(tokens, segments, ti + 1, si + take)
    if (rest !== null) return [take, ...rest]
  }
  return null
}

const RANK = { static: 0, param: 1, glob: 2 } as const

function compareKeys (a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!
  }
  return a.length - b.length
}

const REF_DOWNLOAD = 'get_projects_id_jobs_artifacts_ref_name_download'
const REF_RAW = 'get_projects_id_jobs_artifacts_ref_name_raw_artifact_path'

/**
 * GitLab's job artifact routes by ref take `ref_name: /.+/`, any number of segments, and Grape
 * tries the archive route before the raw file route: `/projects/<id>/jobs/artifacts/<ref>/download`
 * (or with any format, `download.json`, `download.xml`) first, then `<ref>/raw/<file>` with the ref
 * running to the last `/raw/`.
 */
function refRoute (apiPath: string, routes: readonly CatalogRoute[]): OracleMatch | null {
  if (!routes.some(r => r.id === REF_DOWNLOAD) || !routes.some(r => r.id === REF_RAW)) return null
  const segments = apiPath.split('/').slice(1)
  if (segments.length < 6 || segments[0] !== 'projects' || segments[2] !== 'jobs' || segments[3] !== 'artifacts') return null
  const decode = (s: string): string | null => { try { return decodeURIComponent(s) } catch { return null } }
  const id = decode(segments[1]!)
  if (id === null || id === '') return null
  const last = segments[segments.length - 1]!
  // The archive's route takes any format (`download.xml`; an escaped '.' of it decoded here too).
  if (last === 'download' || (last.startsWith('download.') && last.length > 'download.'.length)) {
    const ref = decode(segments.slice(4, -1).join('/'))
    return ref === null ? null : { routeId: REF_DOWNLOAD, params: { id, ref_name: ref }, format: last !== 'download' }
  }
  for (let at = segments.length - 2; at > 4; at--) {
    if (segments[at] !== 'raw') continue
    const ref = decode(segments.slice(4, at).join('/'))
    const file = decode(segments.slice(at + 1).join('/'))
    return ref === null || file === null ? null : { routeId: REF_RAW, params: { id, ref_name: ref, artifact_path: file }, format: false }
  }
  return null
}

export function createOracle (routes: readonly CatalogRoute[]): Oracle {
  const compiled = routes.map(route => ({ route, variants: oracleVariants(route.pattern) }))

  const candidates = (method: string, apiPath: string): Array<{ route: CatalogRoute, variant: OracleVariant, takes: number[] }> => {
    const segments = apiPath.split('/').slice(1)
    const found: Array<{ route: CatalogRoute, variant: OracleVariant, takes: number[] }> = []
    for (const { route, variants } of compiled) {
      if (route.method !== method) continue
      for (const variant of variants) {
        const takes = decompose(variant.tokens, segments)
        if (takes !== null) found.push({ route, variant, takes })
      }
    }
    return found
  }

  /**
   * Grape appends `(.:format)` to every route of GitLab's API and takes any extension as the
   * format: a path that matches nothing as written is matched again with everything after the
   * first '.' of its last segment read as `.json`.
   */
  function asJsonFormats (apiPath: string): string[] {
    const segments = apiPath.split('/')
    const last = segments.pop()!
    // Each '.' but a leading one: the last four, the last first, then the first.
    const dots: number[] = []
    for (let i = 1; i < last.length; i++) if (last[i] === '.') dots.push(i)
    const tried = [...dots.slice(-4).reverse(), ...(dots.length > 4 ? [dots[0]!] : [])]
    return tried.filter(dot => last.slice(dot) !== '.json').map(dot => [...segments, last.slice(0, dot) + '.json'].join('/'))
  }

  return {
    match (method, apiPath) {
      const asWritten = matchAsWritten(method, apiPath)
      if (asWritten !== null) return asWritten
      for (const other of asJsonFormats(apiPath)) {
        const found = matchAsWritten(method, other)
        if (found !== null) return found
      }
      return null
    },
    allMatches (method, apiPath) {
      return [...new Set(candidates(method, apiPath).map(c => c.route.id))]
    }
  }

  function matchAsWritten (method: string, apiPath: string): OracleMatch | null {
    {
      const segments = apiPath.split('/').slice(1)
      let best: { route: CatalogRoute, variant: OracleVariant, takes: number[], key: number[] } | null = null
      for (const c of candidates(method, apiPath)) {
        const key = c.variant.tokens.flatMap((token, i) => new Array<number>(c.takes[i]!).fill(RANK[token.kind]))
        if (best === null || compareKeys(key, best.key) < 0) best = { ...c, key }
      }
      if (method === 'GET' && (best === null || best.route.id === REF_RAW)) {
        const byRef = refRoute(apiPath, routes)
        if (byRef !== null && (best === null || byRef.routeId === REF_DOWNLOAD)) return byRef
      }
      if (best === null) return null
      const { takes } = best
      const params: Record<string, string> = {}
      let at = 0
      best.variant.tokens.forEach((token, i) => {
        const taken = segments.slice(at, at + takes[i]!)
        at += takes[i]!
        if (token.kind === 'param') params[token.name] = decodeURIComponent(taken[0]!.slice(0, taken[0]!.length - token.suffix.length))
        if (token.kind === 'glob') params[token.name] = decodeURIComponent(taken.join('/').slice(token.prefix.length))
      })
      return { routeId: best.route.id, params, format: best.variant.format }
    }
  }
}
