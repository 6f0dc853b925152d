// Ruby as the oracle of the numbers GitLab reads in an `:id`: Grape coerces an `:id` declared
// Integer with Ruby's `Integer(value, 10)` (src/text.ts, rubyInteger). Generated strings of
// digits, signs, underscores, white space and prefixes, read by both.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fc from 'fast-check'
import { rubyInteger } from '../../src/text.ts'
import { requireRack } from './rack-available.ts'

test('rubyInteger reads what Ruby\'s Integer(s, 10) reads, and refuses what it refuses', t => {
  if (!requireRack(t)) return
  const space = fc.constantFrom('', '', ' ', '\t', '\n', '\v', '\f', '\r', '  ', '\u00a0')
  const digits = fc.array(fc.constantFrom('0', '3', '42'), { maxLength: 3 }).map(a => a.join(''))
  // Shaped like a number, with one piece or another out of place.
  const numberLike = fc.tuple(space, fc.constantFrom('', '', '+', '-', '+-', '_', ' +'), fc.constantFrom('', '', '0d', '0D', '0x', 'd', '0_'), digits,
    fc.constantFrom('', '', '_', '__', '.', 'e', '/'), digits, space).map(parts => parts.join(''))
  const anything = fc.array(fc.constantFrom('0', '3', '_', '+', '-', ' ', '\t', 'd', 'x', '%', 'a/b'), { minLength: 1, maxLength: 6 }).map(a => a.join(''))
  const inputs = [...new Set([
    '+300', '3_00', ' 300', '300 ', '0300', '0d300', '-0D3', '3__0', '_3', '3_', '+ 3', '0d_3', '', '300',
    ...fc.sample(fc.oneof(numberLike, anything), { numRuns: 4_000, seed: 20261129 })
  ])]
  const ruby = spawnSync('ruby', ['-rjson', '-e', 'STDIN.read.split("\\n").each { |l| s = JSON.parse(l); puts JSON.generate(begin; Integer(s, 10); rescue ArgumentError, TypeError; nil; end) }'],
    { input: inputs.map(s => JSON.stringify(s)).join('\n'), encoding: 'utf8', maxBuffer: 1 << 24 })
  assert.equal(ruby.status, 0, ruby.stderr)
  const answers = ruby.stdout.trim().split('\n').map(l => JSON.parse(l) as number | null)
  assert.equal(answers.length, inputs.length)
  const wrong = inputs.flatMap((s, i) => {
    const ours = rubyInteger(s)
    const theirs = answers[i]!
    return (ours === null ? theirs === null : theirs !== null && ours === theirs) ? [] : [`${JSON.stringify(s)}: Ruby ${String(theirs)}, the gate ${String(ours)}`]
  })
  // The generator reaches both sides.
  assert.ok(answers.filter(a => a !== null).length > 200 && answers.filter(a => a === null).length > 200, 'too few numbers or non-numbers generated')
  assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} disagreements, the first 20 shown`)
})
