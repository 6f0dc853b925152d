// The folders of src/ import each other in one direction only: a folder-level cycle (grants ↔
// usage, grants ↔ policy were two) means neither side can be read, tested or changed alone.
// Every relative import and re-export of src/ counts, `import type` included.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

/**
 * Cycles known and accepted, each as its sorted members, with why. None today: the pattern
 * language lives in catalog/ (the loader checks it, routing compiles it), so routing → catalog
 * is one way.
 */
const KNOWN: readonly string[] = []

/** Folder (or root file) of src/ → the folders and root files it imports. */
function folderGraph (): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>()
  const unit = (file: string): string => relative(SRC, file).split('/')[0]!
  for (const entry of readdirSync(SRC, { recursive: true })) {
    const name = String(entry)
    if (!name.endsWith('.ts')) continue
    const file = join(SRC, name)
    const from = unit(file)
    const edges = graph.get(from) ?? new Set<string>()
    graph.set(from, edges)
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)'(\.{1,2}\/[^']+)'/g)) {
      const to = unit(resolve(dirname(file), m[1]!))
      if (to !== from && !to.startsWith('..')) edges.add(to)
    }
  }
  return graph
}

/** The cycles of a graph: strongly connected components of more than one node (Tarjan). */
export function cycles (graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const out: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++
    stack.push(v); onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) out.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return out
}

test('no folder of src/ imports one that imports it back (known exceptions listed)', () => {
  const graph = folderGraph()
  for (const folder of ['grants', 'usage', 'policy', 'catalog']) assert.ok(graph.has(folder), `src/${folder}/ scanned`)
  const found = cycles(graph).map(c => c.join(' ')).sort()
  assert.deepEqual(found.filter(c => !KNOWN.includes(c)), [], 'a new folder cycle: turn one of the imports around')
})

test('grants, usage and policy: grants imports neither, policy does not import usage', () => {
  const graph = folderGraph()
  for (const to of ['usage', 'policy']) assert.ok(!graph.get('grants')!.has(to), `grants imports ${to}`)
  assert.ok(!graph.get('policy')!.has('usage'), 'policy imports usage')
})

test('catalog imports no routing: routing compiles the catalog, not the other way', () => {
  const graph = folderGraph()
  assert.ok(graph.get('routing')!.has('catalog'), 'routing reads the catalog (the scan sees it)')
  assert.ok(!graph.get('catalog')!.has('routing'), 'catalog imports routing')
})

test('the cycle finder finds cycles', () => {
  const g = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]])
  assert.deepEqual(cycles(g), [['a', 'b', 'c']])
  assert.deepEqual(cycles(new Map([['a', new Set(['b'])], ['b', new Set<string>()]])), [])
})
