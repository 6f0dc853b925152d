// The GraphQL parameters the gate reads (src/admin/graphql.ts: query, operationName, variables,
// _json, in every reading) against Rack 2.2 itself: Rack::Request#GET of the URL's query and
// #POST of a form body, and Rails' merge of the two (the URL's win). For generated texts of
// GraphQL names, brackets, separators, escapes, '+' and spaces, Rack's reading must be one of
// the gate's readings, and where Rack raises the gate must count the text as broken. A failure
// prints the seed; GRAPHQL_PARAMS_SEED and GRAPHQL_PARAMS_RUNS replay it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { readGraphqlParams, type GraphqlParams } from '../../src/admin/graphql.ts'
import { startRackOracle, type RackReading } from '../helpers/rack-oracle.ts'
import { propertyRun } from '../helpers/property-run.ts'
import { requireRack } from './rack-available.ts'

const ATOMS = ['query', '_json', 'variables', 'operationName', 'private_token', 'a', 'b', '0', '[', ']', '[]', '][', '[[', ']]', '=', '&', ';', ' ', '+', '%20', '%5B', '%5D', '%26', '%3B', '%3D', '%2B', 'query[]', '_json[]', '_json[][query]', '[query]', 'variables[a]', '{x}', '%0A', '%0D', '[]%0A[]']
const text = fc.array(fc.constantFrom(...ATOMS), { minLength: 1, maxLength: 12 }).map(parts => parts.join(''))
const FORM = 'application/x-www-form-urlencoded'

const sameData = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** Why the gate's readings miss Rack's, or null when one of them is Rack's. */
function missed (side: string, input: string, rack: RackReading, gate: GraphqlParams): string | null {
  if ('raised' in rack) return gate.broken.length > 0 ? null : `${side} ${JSON.stringify(input)}: Rack raises ${rack.raised}, the gate reads ${JSON.stringify(gate.readings)}`
  return gate.readings.some(r => sameData(r, rack.params)) ? null : `${side} ${JSON.stringify(input)}: Rack reads ${JSON.stringify(rack.params)}, the gate ${JSON.stringify(gate.readings)}`
}

test('GraphQL parameters: Rack\'s reading of the URL, of a form body and of both merged is one of the gate\'s', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const { seed, numRuns: runs } = propertyRun(t, 'GRAPHQL_PARAMS', 3_000, `Rack ${oracle.release}`)
  let merged = 0
  await fc.assert(fc.asyncProperty(text, text, async (query, body) => {
    const answer = await oracle.ask({ method: 'POST', target: `/api/graphql?${query}`, headers: [['Content-Type', FORM]], body: Buffer.from(body, 'latin1'), params: true })
    const url = readGraphqlParams(Buffer.alloc(0), { method: 'GET', query, contentType: '', bodyReadable: false })
    const form = readGraphqlParams(Buffer.from(body, 'latin1'), { method: 'POST', query: '', contentType: FORM, bodyReadable: true })
    const problem = missed('URL', query, answer.get!, url) ?? missed('form body', body, answer.post!, form)
    if (problem !== null) throw new Error(problem)
    if ('params' in answer.get! && 'params' in answer.post!) {
      // Rails: request_parameters.merge(query_parameters).
      const rails = { ...answer.post.params, ...answer.get.params }
      const both = readGraphqlParams(Buffer.from(body, 'latin1'), { method: 'POST', query, contentType: FORM, bodyReadable: true })
      if (!both.readings.some(r => sameData(r, rails))) throw new Error(`URL ${JSON.stringify(query)} and body ${JSON.stringify(body)}: Rails reads ${JSON.stringify(rails)}, the gate ${JSON.stringify(both.readings)}`)
      merged++
    }
  }), { seed, numRuns: runs })
  // The generator reaches what it is for: most pairs parse on both sides and are compared merged.
  assert.ok(merged > runs / 2, `only ${merged} of ${runs} pairs compared merged`)
})
