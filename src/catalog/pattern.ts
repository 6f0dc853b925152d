// GitLab (Grape/Mustermann) route patterns as the gate reads them: the language of the catalog's
// `pattern` field, checked by the loader and compiled by src/routing/router.ts.
//
// A pattern such as `/projects/:id/packages/generic/:package_name/*package_version/(*path/):file_name`
// becomes one or more variants (optional groups expanded), each a list of segment tokens:
//   static  `deployments`      one segment, byte-equal
//   param   `:package_id`      one segment; `dots: false` for Grape parameters without a
//                              requirement (integer ids), which stop at '.'; `suffix` for a
//                              literal after the parameter (`:module_version.mod`)
//   glob    `*path`            one or more whole segments, Mustermann's lazy `.*?`;
//                              `prefix` for a literal glued in front (`latest*suffix_path`)
//
// Precedence between routes (applied by the router, reproduced by the test oracle): compare
// the matched segments left to right by kind, static before parameter before glob; the first
// difference decides. Inside one route, earlier globs take as few segments as they can.

export type Token =
  | { readonly kind: 'static', readonly value: string }
  | { readonly kind: 'param', readonly name: string, readonly dots: boolean, readonly suffix: string }
  | { readonly kind: 'glob', readonly name: string, readonly prefix: string }

export interface Variant {
  readonly tokens: readonly Token[]
  /** True for the `(.json)` form Grape appends to every route: the last token carries `.json`. */
  readonly format: boolean
}

/** Rank of a token kind in the precedence key: lower wins. */
export const RANK = { static: 0, param: 1, glob: 2 } as const

const NAME = /^[a-z_][a-z0-9_]*$/
const STATIC = /^[A-Za-z0-9_.~@-]+$/
// Literals that may end a parameter (`:module_version.mod`).
const SUFFIX = /^\.[a-z0-9]+$/
export const FORMAT_SUFFIX = '.json'

export class PatternError extends Error {
  constructor (pattern: string, why: string) {
    super(`invalid route pattern ${JSON.stringify(pattern)}: ${why}`)
    this.name = 'PatternError'
  }
}

/**
 * Whether Grape lets the parameter contain '.'. GitLab declares a `[^/]+` requirement on
 * namespace/project ids and on every name-like parameter (file names, versions, tags, refs);
 * integer ids (`*_id`, `*_iid`, `serial`, and `:id` outside /projects and /groups) have
 * none, so Mustermann's default `[^/.]+` applies and a `.json` after them is the format.
 */
export function paramAllowsDots (name: string, previousStatic: string | undefined): boolean {
  if (name === 'id') return previousStatic === 'projects' || previousStatic === 'groups' || previousStatic === 'group'
  return !(name.endsWith('_id') || name.endsWith('_iid') || name === 'serial')
}

/** Expands `( ... )` optional groups; the form with the group present comes first, as Mustermann's greedy `?` tries it first. */
export function expandOptionalGroups (pattern: string): string[] {
  const open = pattern.indexOf('(')
  if (open === -1) {
    if (pattern.includes(')')) throw new PatternError(pattern, 'unbalanced ")"')
    return [pattern]
  }
  const close = pattern.indexOf(')', open)
  if (close === -1) throw new PatternError(pattern, 'unbalanced "("')
  const inner = pattern.slice(open + 1, close)
  if (inner.includes('(')) throw new PatternError(pattern, 'nested optional groups are not supported')
  const before = pattern.slice(0, open)
  const after = pattern.slice(close + 1)
  return [...expandOptionalGroups(before + inner + after), ...expandOptionalGroups(before + after)]
}

function parseSegment (pattern: string, segment: string, previousStatic: string | undefined): Token {
  if (segment.startsWith(':')) {
    const dot = segment.indexOf('.')
    const name = dot === -1 ? segment.slice(1) : segment.slice(1, dot)
    const suffix = dot === -1 ? '' : segment.slice(dot)
    if (!NAME.test(name)) throw new PatternError(pattern, `bad parameter name in "${segment}"`)
    if (suffix !== '' && !SUFFIX.test(suffix)) throw new PatternError(pattern, `unsupported literal after parameter in "${segment}"`)
    return { kind: 'param', name, dots: paramAllowsDots(name, previousStatic), suffix }
  }
  const star = segment.indexOf('*')
  if (star !== -1) {
    const prefix = segment.slice(0, star)
    const name = segment.slice(star + 1)
    if (!NAME.test(name)) throw new PatternError(pattern, `bad glob name in "${segment}"`)
    if (prefix !== '' && !STATIC.test(prefix)) throw new PatternError(pattern, `unsupported literal before glob in "${segment}"`)
    return { kind: 'glob', name, prefix }
  }
  if (!STATIC.test(segment)) throw new PatternError(pattern, `unsupported characters in "${segment}"`)
  return { kind: 'static', value: segment }
}

function parseExpanded (pattern: string, expanded: string): Token[] {
  if (!expanded.startsWith('/')) throw new PatternError(pattern, 'must start with "/"')
  // A trailing '/' (from `latest(/)`) is ignored, as Grape ignores it in requests.
  const body = expanded.endsWith('/') ? expanded.slice(1, -1) : expanded.slice(1)
  if (body === '') throw new PatternError(pattern, 'empty pattern')
  const tokens: Token[] = []
  let previousStatic: string | undefined
  const names = new Set<string>()
  for (const segment of body.split('/')) {
    if (segment === '') throw new PatternError(pattern, 'empty segment')
    const token = parseSegment(pattern, segment, previousStatic)
    if (token.kind !== 'static') {
      if (names.has(token.name)) throw new PatternError(pattern, `parameter "${token.name}" appears twice`)
      names.add(token.name)
    }
    previousStatic = token.kind === 'static' ? token.value : undefined
    tokens.push(token)
  }
  return tokens
}

/** The `(.json)` form of a variant, where Grape would strip the format suffix; null where the last parameter or glob would swallow it. */
function formatVariant (tokens: readonly Token[]): Variant | null {
  const last = tokens[tokens.length - 1]
  if (last === undefined) return null
  let replaced: Token
  if (last.kind === 'static') replaced = { kind: 'static', value: last.value + FORMAT_SUFFIX }
  else if (last.kind === 'param' && (!last.dots || last.suffix !== '')) replaced = { ...last, suffix: last.suffix + FORMAT_SUFFIX }
  else return null
  return { tokens: [...tokens.slice(0, -1), replaced], format: true }
}

function tokensKey (tokens: readonly Token[]): string {
  return tokens.map(t => t.kind === 'static' ? t.value : t.kind === 'param' ? `:${t.name}${t.dots ? '' : '!'}${t.suffix}` : `${t.prefix}*${t.name}`).join('/')
}

/** Every variant of a GitLab pattern, in the order Mustermann would try them, duplicates removed. */
export function parsePattern (pattern: string): Variant[] {
  const variants: Variant[] = []
  const seen = new Set<string>()
  const add = (variant: Variant | null): void => {
    if (variant === null) return
    const key = tokensKey(variant.tokens)
    if (seen.has(key)) return
    seen.add(key)
    variants.push(variant)
  }
  const plain = expandOptionalGroups(pattern).map(expanded => parseExpanded(pattern, expanded))
  for (const tokens of plain) add({ tokens, format: false })
  for (const tokens of plain) add(formatVariant(tokens))
  return variants
}

/** Whether one segment is accepted by a param token (Grape's `[^/]+` or `[^/.]+`, then the literal suffix). */
export function paramAccepts (token: Extract<Token, { kind: 'param' }>, segment: string): boolean {
  const valueLength = segment.length - token.suffix.length
  if (valueLength <= 0) return false
  if (token.suffix !== '' && !segment.endsWith(token.suffix)) return false
  if (!token.dots) {
    const dot = segment.indexOf('.')
    if (dot !== -1 && dot < valueLength) return false
  }
  return true
}

/** Whether a segment can open a glob with a glued literal prefix. */
export function globOpens (token: Extract<Token, { kind: 'glob' }>, segment: string): boolean {
  return token.prefix === '' || (segment.length > token.prefix.length && segment.startsWith(token.prefix))
}
