// A deterministic corpus of canonical API paths (the part after `/api/v4`) built from the
// catalog: every variant of every route instantiated with realistic and hostile parameter
// values, plus near misses (a segment dropped or added, a static segment in another case,
// another method, `.json` appended). Used by the differential test and bench/match.ts.

import type { CatalogRoute } from '../../src/catalog/types.ts'
import { oracleVariants, type OracleToken, type OracleVariant } from './oracle.ts'
import { prng } from './prng.ts'

export type CorpusKind = 'instance' | 'json-appended' | 'drop-segment' | 'extra-segment' | 'case-change' | 'other-method'

export interface CorpusEntry {
  method: string
  /** Canonical API path: starts with '/', no empty segment, no trailing '/'. */
  path: string
  /** The route and variant (index in oracleVariants order) the path was generated from. */
  routeId: string
  variant: number
  /** The variant is a `.json` format variant. */
  format: boolean
  kind: CorpusKind
}

export interface CorpusOptions {
  seed?: number
  /** Distinct instantiations generated per route (fewer for routes without enough distinct values). */
  perRoute?: number
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const


type Rnd = () => number
const pick = <T>(rnd: Rnd, list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!
const int = (rnd: Rnd, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1))
const hex = (rnd: Rnd, n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[int(rnd, 0, 15)]).join('')

// ---------------------------------------------------------------------------------------------
// Value pools. Single-segment values for parameters; '/'-separated values for globs.

const NUMERIC = ['1', '7', '42', '0042', '123456789', '2147483647', '00']
const PROJECT_IDS = ['42', '0042', 'group%2Fproject', 'my.group%2Fsub%2Fapp', 'gitlab-org%2Fgitlab', 'a_b%2Fc-d.e',
  'group%2Fproject.json', 'Group%2FProject', 'group%2fproject', 'my-group']

type Gen = (rnd: Rnd) => string

const PARAMS: Record<string, Gen> = {
  package_name: rnd => pick(rnd, ['my-package', 'my_pkg', 'zlib', 'my.pkg', '@scope%2Fname', '@scope%2fname', 'openssl', 'Pkg~1']),
  file_name: rnd => pick(rnd, ['app-1.0.jar', 'app-1.0.pom', 'maven-metadata.xml', 'app-1.0.jar.sha1', 'file.tar.gz',
    'conanfile.py', 'conan_package.tgz', 'conanmanifest.txt', 'conaninfo.txt', 'package.json', 'README', 'x.json.md5']),
  package_version: rnd => pick(rnd, ['1.0.0', '1.2.13', 'v1.2', '2.0.0-rc.1', '0.1']),
  package_username: rnd => pick(rnd, ['_', 'user', 'demo']),
  package_channel: rnd => pick(rnd, ['_', 'stable', 'testing']),
  recipe_revision: rnd => pick(rnd, ['0', hex(rnd, 32)]),
  package_revision: rnd => pick(rnd, ['0', hex(rnd, 32)]),
  conan_package_reference: rnd => hex(rnd, 40),
  module_version: rnd => pick(rnd, ['v1.0.0', 'v0.0.0-20230101120000-abcdef123456', 'v2.1.0+incompatible', 'v1.0.0-rc.1', 'v1']),
  sha256: rnd => hex(rnd, 64),
  sha: rnd => pick(rnd, ['main', hex(rnd, 40), hex(rnd, 8), 'v1.0.0', 'feature%2Fx']),
  tag_name: rnd => pick(rnd, ['v1.2.3', 'release%2Fv1.2.3', 'v1.2', '1.0', 'v1.0.0.json', 'v1.0-%C3%A9']),
  ref_name: rnd => pick(rnd, ['main', 'master', 'v1.0', 'feature%2Fbranch', 'release%2F1.x']),
  file_path: rnd => pick(rnd, ['README.md', 'src%2Fmain.rb', 'docs%2Findex.json', '.gitlab-ci.yml', 'a%2F.hidden', 'file%20name.txt']),
  name: rnd => pick(rnd, ['prod.us-east-1', 'production', 'state.json', 'my-state', 'env_1']),
  tag: rnd => pick(rnd, ['latest', 'beta', 'next', 'v1.json', 'rc-1'])
}

const MAVEN_PARTS = ['com', 'org', 'io', 'example', 'my-company', 'app', 'lib', '1.0', '2.3.4-SNAPSHOT', 'util', 'my.group']

const GLOBS: Record<string, Gen> = {
  package_name: rnd => pick(rnd, ['@scope/name', '@scope%2fname', '@scope%2Fname', 'lodash', 'vendor/package', 'vendor/package.json',
    'my-package', 'my.package', 'vendor/package~dev.json', 'a/b/c']),
  file_name: rnd => pick(rnd, ['@scope/name-1.0.0.tgz', 'name-1.0.0.tgz', 'lodash-4.17.21.tgz', '@scope/name/-/@scope/name-1.0.0.tgz']),
  module_name: rnd => pick(rnd, ['example.com/!my!org/lib', 'gitlab.com/group/project', 'golang.org/x/text', 'example.com/mod/v2',
    'example.com/a/b/c/d', 'example.com']),
  // Maven: 1-7 directories, so with the file name 2-8 segments.
  path: rnd => Array.from({ length: int(rnd, 1, 7) }, () => pick(rnd, MAVEN_PARTS)).join('/'),
  package_version: rnd => pick(rnd, ['1.0.0', 'v1.2', '1.0.0/rc1', '2024.01.01', '1.0.0/build/7']),
  file_identifier: rnd => pick(rnd, ['my_package-1.0.0.tar.gz', 'my_package-1.0.0-py3-none-any.whl', 'pkg/1.0/file.whl']),
  artifact_path: rnd => pick(rnd, ['file.txt', 'path/to/file.txt', 'coverage/index.html', 'a/b/c/d/e.json', 'report.json']),
  direct_asset_path: rnd => pick(rnd, ['bin/app', 'binaries/linux-amd64.tar.gz', 'app.zip']),
  suffix_path: rnd => pick(rnd, ['downloads/bin/app', 'evidences', 'assets/links', 'x', 'downloads/a.json'])
}

/** Values that are valid canonical segments but unusual: escapes, sub-delims, `.json`, dots. */
const HOSTILE = ['5.json', 'a.json', '.json', 'file.json.json', '%252F', 'a%252Fb', 'v1.2', 'a%20b', '%C3%A9t%C3%A9',
  "it's", '~user', 'a;b=c', 'a+b,c', '(x)', '*', '$', '!bang', ':colon', '@', '@scope%2fname', 'a%3Fb', 'a%23b',
  'a%25b', '...', '%2F', 'x%2Fy%2Fz', '0', '-1', '1e3', '&', '%F0%9F%98%80', 'a..b', '_', '~', '%3a%3b', '%c3%a9',
  '%7B%7D', 'a%2Bb%2C', '%24%26%3D', '%5B0%5D', '%22q%22', '%7C', 'a%2fb', '%252e%252e', '%2525', 'x.json%3F']

interface Words {
  /** Static segments of every route (plain variants), plus a few GitLab words. */
  all: string[]
  /** `METHOD index` -> statics found at that segment index (before any glob) in routes of that method. */
  positional: Map<string, string[]>
  /** Statics that directly follow a glob somewhere: inside a glob value they make the lazy split interesting. */
  afterGlob: string[]
}

function catalogWords (routes: readonly CatalogRoute[]): Words {
  const all = new Set<string>(['-', 'latest', 'simple', 'package_files', 'dist-tags', 'authorize'])
  const positional = new Map<string, Set<string>>()
  const afterGlob = new Set<string>(['-', '@v', 'dist-tags'])
  for (const route of routes) {
    for (const variant of oracleVariants(route.pattern)) {
      if (variant.format) continue
      let globSeen = false
      variant.tokens.forEach((token, i) => {
        if (token.kind === 'glob') globSeen = true
        if (token.kind !== 'static') return
        all.add(token.text)
        if (variant.tokens[i - 1]?.kind === 'glob') afterGlob.add(token.text)
        if (globSeen) return
        const key = `${route.method} ${i}`
        if (!positional.has(key)) positional.set(key, new Set())
        positional.get(key)!.add(token.text)
      })
    }
  }
  return { all: [...all], positional: new Map([...positional].map(([k, v]) => [k, [...v]])), afterGlob: [...afterGlob] }
}

// ---------------------------------------------------------------------------------------------
// Canonical segments (what canonicalize() leaves alone).

const SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$/
const DECODED_BY_CANONICALIZE = /%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2[DE]|5F|7E|40)/i

export function isCanonicalSegment (segment: string): boolean {
  if (!SEGMENT.test(segment) || DECODED_BY_CANONICALIZE.test(segment)) return false
  return segment.split(/%2F/i).every(part => part !== '.' && part !== '..')
}

// ---------------------------------------------------------------------------------------------

interface Instance {
  segments: string[]
  /** Indices of segments taken by static tokens. */
  statics: number[]
}

function instantiate (method: string, variant: OracleVariant, rnd: Rnd, words: Words): Instance {
  const segments: string[] = []
  const statics: number[] = []
  // A hostile single segment: a static word used at this position by another route of the
  // method (the overlaps that decide precedence), any static word, or an odd but valid value.
  const hostileSegment = (at: number): string => {
    const r = rnd()
    const here = words.positional.get(`${method} ${at}`)
    if (r < 0.4 && here !== undefined) return pick(rnd, here)
    if (r < 0.6) return pick(rnd, words.all)
    return pick(rnd, HOSTILE)
  }
  const hostileGlobSegment = (): string => {
    const r = rnd()
    return r < 0.35 ? pick(rnd, words.afterGlob) : r < 0.6 ? pick(rnd, words.all) : r < 0.8 ? pick(rnd, HOSTILE) : pick(rnd, ['a', 'pkg', 'x.y'])
  }
  for (const token of variant.tokens) {
    if (token.kind === 'static') {
      statics.push(segments.length)
      segments.push(token.text)
    } else if (token.kind === 'param') {
      const value = rnd() < 0.25 ? hostileSegment(segments.length) : paramValue(token, rnd)
      segments.push(value + token.suffix)
    } else {
      const value = rnd() < 0.7
        ? (GLOBS[token.name] ?? ((r: Rnd) => pick(r, ['a', 'a/b', 'x.y/z'])))(rnd)
        : Array.from({ length: int(rnd, 1, 4) }, hostileGlobSegment).join('/')
      segments.push(...(token.prefix + value).split('/'))
    }
  }
  return { segments, statics }
}

function paramValue (token: Extract<OracleToken, { kind: 'param' }>, rnd: Rnd): string {
  if (token.name === 'id') return token.dots ? pick(rnd, PROJECT_IDS) : pick(rnd, NUMERIC)
  if (!token.dots) return pick(rnd, NUMERIC)
  return (PARAMS[token.name] ?? ((r: Rnd) => pick(r, ['value', 'v1.2', 'abc'])))(rnd)
}

function changeCase (segment: string): string {
  const first = segment.charAt(0)
  const flipped = first === first.toUpperCase() ? first.toLowerCase() : first.toUpperCase()
  if (flipped !== first) return flipped + segment.slice(1)
  return segment.toUpperCase()
}

/** A deterministic corpus of at least ~10,000 canonical API paths (default options). */
export function generateCorpus (routes: readonly CatalogRoute[], options: CorpusOptions = {}): CorpusEntry[] {
  const rnd = prng(options.seed ?? 0x5eed)
  const perRoute = options.perRoute ?? 60
  const words = catalogWords(routes)
  const out: CorpusEntry[] = []
  const seen = new Set<string>()

  const add = (entry: Omit<CorpusEntry, 'path'>, segments: readonly string[]): boolean => {
    if (segments.length === 0) return false
    for (const segment of segments) {
      if (!isCanonicalSegment(segment)) throw new Error(`corpus generator produced a non-canonical segment ${JSON.stringify(segment)}`)
    }
    const path = '/' + segments.join('/')
    const key = `${entry.method} ${path}`
    if (seen.has(key)) return false
    seen.add(key)
    out.push({ ...entry, path })
    return true
  }

  const nearMisses: CorpusKind[] = ['drop-segment', 'extra-segment', 'case-change', 'other-method', 'json-appended']
  for (const route of routes) {
    const variants = oracleVariants(route.pattern)
    let produced = 0
    let nearMiss = 0
    for (let attempt = 0; produced < perRoute && attempt < perRoute * 6; attempt++) {
      const vi = attempt % variants.length
      const variant = variants[vi]!
      const base = { method: route.method as string, routeId: route.id, variant: vi, format: variant.format }
      const { segments, statics } = instantiate(route.method, variant, rnd, words)
      if (add({ ...base, kind: 'instance' }, segments)) produced++
      if (rnd() >= 0.25) continue
      const kind = nearMisses[nearMiss++ % nearMisses.length]!
      const changed = [...segments]
      let method = route.method as string
      if (kind === 'drop-segment') {
        changed.splice(int(rnd, 0, changed.length - 1), 1)
      } else if (kind === 'extra-segment') {
        changed.push(rnd() < 0.5 ? pick(rnd, words.all) : pick(rnd, ['extra', 'x.json', '1', 'a%2Fb']))
      } else if (kind === 'case-change') {
        if (statics.length === 0) continue
        const at = pick(rnd, statics)
        changed[at] = changeCase(changed[at]!)
      } else if (kind === 'other-method') {
        method = pick(rnd, METHODS.filter(m => m !== route.method))
      } else {
        changed[changed.length - 1] += '.json'
      }
      add({ ...base, method, kind }, changed)
    }
  }
  return out
}
