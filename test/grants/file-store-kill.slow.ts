// The file-backed memory store survives a kill in the middle of a save: a writer process is
// killed while its temp file exists, again and again. Slow (several processes): run by
// npm run test:slow.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMemoryStore } from '../../src/grants/memory-store.ts'

function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-grants-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('file store: killing the process mid-save never leaves a broken file', async t => {
  const dir = tempDir(t)
  const file = join(dir, 'grants.json')
  const child = fileURLToPath(new URL('./file-writer.child.ts', import.meta.url))
  let lastCount = 0
  let midSave = 0
  // Kill until two kills landed inside a save (how soon depends on the scheduler), 30 rounds at most.
  let rounds = 0
  while (midSave < 2 && rounds < 30) {
    rounds++
    const proc = spawn(process.execPath, ['--import', 'tsx', child, file], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.after(() => { proc.kill('SIGKILL') })
    await new Promise<void>((resolve, reject) => {
      let out = ''
      proc.stdout!.on('data', d => { out += String(d); if (out.includes('written')) resolve() })
      proc.once('exit', code => reject(new Error(`writer exited early with ${code}`)))
    })
    // Kill it the moment a save is under way (its temp file exists), to crash inside a save.
    const deadline = Date.now() + 5000
    while (!readdirSync(dir).some(name => name.endsWith('.tmp')) && Date.now() < deadline) {
      await new Promise(resolve => setImmediate(resolve))
    }
    proc.kill('SIGKILL')
    await new Promise(resolve => proc.once('exit', resolve))

    const left = readdirSync(dir).filter(name => name.endsWith('.tmp'))
    if (left.length > 0) midSave++
    // Restarted as after a crash some time ago: a start leaves a temporary file under 10 s old
    // alone (it may be a running gate's save).
    const past = new Date(Date.now() - 60_000)
    for (const name of left) utimesSync(join(dir, name), past, past)
    const text = readFileSync(file, 'utf8')
    const doc = JSON.parse(text) as { projects: Array<{ version: number }> }
    assert.ok(doc.projects.length >= lastCount, 'a later save never loses projects')
    assert.ok(doc.projects.length >= 1)
    lastCount = doc.projects.length
    // The file loads as a store, and its versions keep increasing across the restarts.
    const store = await createMemoryStore({ file })
    assert.equal((await store.get(1))?.entries.length, 200)
    await store.close()
  }
  assert.ok(!readdirSync(dir).some(name => name.endsWith('.tmp')), 'temp files are cleaned up on start')
  // The kill must really have landed inside a save at least once, or this test proves nothing.
  assert.ok(midSave >= 2, `only ${midSave}/${rounds} kills landed mid-save`)
  t.diagnostic(`kills that landed mid-save: ${midSave}/${rounds}`)
})
