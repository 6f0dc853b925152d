// Whether two token lists can match the same path, and a path that shows it. Used at compile
// time (which routes the router must consider when find-my-way's first answer does not
// match) and by `catalog lint` (every overlapping pair and which one wins).

import { globOpens, paramAccepts, type Token } from '../catalog/pattern.ts'

// One NFA state per segment: a glob becomes an opening state and a loop over more segments.
type State =
  | { readonly kind: 'token', readonly token: Token }
  | { readonly kind: 'more' }

function states (tokens: readonly Token[]): State[] {
  const out: State[] = []
  for (const token of tokens) {
    out.push({ kind: 'token', token })
    if (token.kind === 'glob') out.push({ kind: 'more' })
  }
  return out
}

function accepts (state: State, segment: string): boolean {
  if (state.kind === 'more') return true
  const { token } = state
  if (token.kind === 'static') return token.value === segment
  if (token.kind === 'param') return paramAccepts(token, segment)
  return globOpens(token, segment)
}

function samples (state: State): { prefixes: string[], suffixes: string[], exact: string[] } {
  if (state.kind === 'more') return { prefixes: [''], suffixes: [''], exact: [] }
  const { token } = state
  if (token.kind === 'static') return { prefixes: [], suffixes: [], exact: [token.value] }
  if (token.kind === 'param') return { prefixes: [''], suffixes: [token.suffix], exact: [] }
  return { prefixes: [token.prefix], suffixes: [''], exact: [] }
}

/** A segment both states accept, or null. Candidates are built from each side's literals. */
function commonSegment (a: State, b: State): string | null {
  const sa = samples(a)
  const sb = samples(b)
  const candidates = [...sa.exact, ...sb.exact]
  for (const prefix of [...sa.prefixes, ...sb.prefixes]) {
    for (const suffix of [...sa.suffixes, ...sb.suffixes]) candidates.push(prefix + 'a' + suffix, prefix + 'a')
  }
  for (const candidate of candidates) {
    if (accepts(a, candidate) && accepts(b, candidate)) return candidate
  }
  return null
}

/**
 * The segments of a path matched by both token lists, or null when no path is. Breadth-first
 * over the product of the two segment automata, so the witness is as short as possible.
 */
export function commonPath (a: readonly Token[], b: readonly Token[]): string[] | null {
  if (clearlyDisjoint(a, b)) return null
  const sa = states(a)
  const sb = states(b)
  const width = sb.length + 1
  const parent = new Map<number, { from: number, segment: string } | null>()
  const start = 0
  parent.set(start, null)
  let queue = [start]
  // Epsilon moves: a 'more' state may be left without consuming a segment.
  const closure = (i: number, list: State[]): number[] => {
    const out = [i]
    while (i < list.length && list[i]!.kind === 'more') out.push(++i)
    return out
  }
  while (queue.length > 0) {
    const next: number[] = []
    for (const node of queue) {
      const i0 = Math.floor(node / width)
      const j0 = node % width
      for (const i of closure(i0, sa)) {
        for (const j of closure(j0, sb)) {
          if (i === sa.length && j === sb.length) return witness(parent, node)
          if (i === sa.length || j === sb.length) continue
          const segment = commonSegment(sa[i]!, sb[j]!)
          if (segment === null) continue
          const ni = sa[i]!.kind === 'more' ? i : i + 1
          const nj = sb[j]!.kind === 'more' ? j : j + 1
          const target = ni * width + nj
          if (parent.has(target)) continue
          parent.set(target, { from: node, segment })
          next.push(target)
        }
      }
    }
    queue = next
  }
  return null
}

function witness (parent: Map<number, { from: number, segment: string } | null>, node: number): string[] {
  const segments: string[] = []
  for (let step = parent.get(node); step != null; step = parent.get(step.from)) segments.push(step.segment)
  return segments.reverse()
}

/** A cheap test that settles most pairs: their leading segments, before any glob, cannot agree. */
function clearlyDisjoint (a: readonly Token[], b: readonly Token[]): boolean {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x.kind === 'glob' || y.kind === 'glob') return false
    if (x.kind === 'static' && y.kind === 'static' && x.value !== y.value) return true
    if (x.kind === 'static' && y.kind === 'param' && !paramAccepts(y, x.value)) return true
    if (y.kind === 'static' && x.kind === 'param' && !paramAccepts(x, y.value)) return true
  }
  return a.length !== b.length && !a.some(t => t.kind === 'glob') && !b.some(t => t.kind === 'glob')
}
