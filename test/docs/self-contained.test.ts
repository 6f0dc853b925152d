// The repository's code and docs stand on their own: no citation of notes its users do not have
// (a sibling folder of shared notes, the GitLab semantics notes file, the brief of a task, an
// issue number),
// and every relative link in docs/*.md and README.md reaches a file that exists (and, for a
// Markdown file, a heading that exists). GitLab's rules are cited from docs/gitlab-rules.md or
// from GitLab's own source files.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const self = relative(root, fileURLToPath(import.meta.url))

const SCOPE = ['src', 'docs', 'test', 'bench', 'scripts', 'catalog', 'deploy', 'README.md']

/** Tracked files under the scope (git ls-files), or a walk of the folders outside a git checkout. */
function trackedFiles (): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--', ...SCOPE], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return out.split('\0').filter(f => f !== '' && existsSync(join(root, f)))
  } catch {
    const files: string[] = []
    for (const entry of SCOPE) {
      const full = join(root, entry)
      if (!existsSync(full)) continue
      if (statSync(full).isFile()) files.push(entry)
      else for (const f of readdirSync(full, { recursive: true })) if (statSync(join(full, String(f))).isFile()) files.push(join(entry, String(f)))
    }
    return files
  }
}

// Spelled in pieces, so that this file does not cite them itself.
const SHARED = ['..', 'shared'].join('/')
const SEMANTICS = ['gitlab', 'semantics.md'].join('-')
const BRIEF = ['task', 'brief'].join(' ')
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

const CITATIONS: ReadonlyArray<readonly [string, RegExp]> = [
  [SHARED, new RegExp(escape(SHARED) + '(?![\\w-])')],
  [SEMANTICS, new RegExp(escape(SEMANTICS), 'i')],
  [BRIEF, new RegExp(BRIEF, 'i')],
  ['issue <number>', /\bissue\s+#?\d+/i]
]

/** Offending lines as `file:line: what`, for the given files' text. */
export function findCitations (files: ReadonlyArray<readonly [string, string]>): string[] {
  const found: string[] = []
  for (const [name, text] of files) {
    const lines = text.split('\n')
    lines.forEach((line, i) => {
      for (const [what, re] of CITATIONS) if (re.test(line)) found.push(`${name}:${i + 1}: cites ${what}: ${line.trim().slice(0, 120)}`)
    })
  }
  return found
}

test('no tracked file cites notes the repository does not have', () => {
  const files = trackedFiles().filter(f => f !== self)
  assert.ok(files.length > 50, `expected the project's files, found ${files.length}`)
  const texts = files.map(f => [f, readFileSync(join(root, f), 'utf8')] as const)
  assert.deepEqual(findCitations(texts), [])
})

test('the citation check catches each form', () => {
  const bad = [
    `see ${SHARED}/notes.md`,
    `// (${SEMANTICS} §5)`,
    `as the ${BRIEF} says`,
    'fixed in issue 12',
    'Issue #7 asked for it'
  ]
  for (const line of bad) assert.equal(findCitations([['x.ts', line]]).length > 0, true, line)
  const fine = ['open a confidential issue in the tracker', 'docs/gitlab-rules.md, "The decision"', 'lib/api/helpers.rb', `${SHARED}-cache`]
  for (const line of fine) assert.deepEqual(findCitations([['x.ts', line]]), [], line)
})

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
function anchorsOf (markdown: string): Set<string> {
  const anchors = new Set<string>()
  for (const line of stripFences(markdown).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (m === null) continue
    anchors.add(m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'))
  }
  return anchors
}

function stripFences (markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
}

/** Fenced blocks and inline code spans hold examples, not links. */
function stripCode (markdown: string): string {
  return stripFences(markdown).replace(/`[^`\n]*`/g, '')
}

function linksOf (markdown: string): string[] {
  const text = stripCode(markdown)
  const links: string[] = []
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push(m[1]!)
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) links.push(m[1]!)
  return links
}

test('every relative link in docs/*.md and README.md reaches an existing file and heading', () => {
  const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)]
  const broken: string[] = []
  let checked = 0
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8')
    for (const link of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) continue // http:, mailto:, ...
      checked++
      const [pathPart, anchor] = link.split('#', 2) as [string, string | undefined]
      const target = pathPart === '' ? join(root, page) : resolve(join(root, dirname(page)), decodeURIComponent(pathPart.split('?')[0]!))
      if (!existsSync(target)) {
        broken.push(`${page}: ${link} (no such file)`)
        continue
      }
      if (anchor !== undefined && anchor !== '' && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(decodeURIComponent(anchor).toLowerCase())) {
        broken.push(`${page}: ${link} (no such heading)`)
      }
    }
  }
  assert.ok(checked > 0, 'no relative links found')
  assert.deepEqual(broken, [])
})
