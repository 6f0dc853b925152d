// The catalog's policy list compiled once for decisions and validation. GitLab expands every
// granted admin_X with its read_X twin before comparing (lib/ci/job_token/policies.rb,
// app/models/ci/job_token/scope.rb): the index keeps, per policy, the policies whose grant
// satisfies it.

import type { PolicyList } from './types.ts'

export interface PolicyIndex {
  /** How many policies the catalog knows: a list naming each at most once is no longer. */
  readonly size: number
  isKnown (name: string): boolean
  isDeprecated (name: string): boolean
  /** Whether `granted` satisfies `required`: it holds it, or an admin policy that implies it. */
  satisfies (granted: readonly string[], required: string): boolean
  /** `granted` plus every policy it implies, sorted. */
  expand (granted: readonly string[]): string[]
}

export function createPolicyIndex (list: PolicyList): PolicyIndex {
  const known = new Set(list.policies.map(p => p.name))
  const deprecated = new Set(list.deprecated)
  // required policy → the policies that satisfy it (itself first)
  const satisfiedBy = new Map<string, string[]>()
  for (const policy of list.policies) satisfiedBy.set(policy.name, [policy.name])
  for (const policy of list.policies) {
    if (policy.implies !== undefined) satisfiedBy.get(policy.implies)?.push(policy.name)
  }
  const implied = new Map<string, string>()
  for (const policy of list.policies) if (policy.implies !== undefined) implied.set(policy.name, policy.implies)

  return {
    size: known.size,
    isKnown: name => known.has(name),
    isDeprecated: name => deprecated.has(name),
    satisfies (granted, required) {
      const by = satisfiedBy.get(required)
      // A policy the catalog does not list can only be held literally.
      if (by === undefined) return granted.includes(required)
      for (const name of by) if (granted.includes(name)) return true
      return false
    },
    expand (granted) {
      const out = new Set(granted)
      for (const name of granted) {
        const twin = implied.get(name)
        if (twin !== undefined) out.add(twin)
      }
      return [...out].sort()
    }
  }
}
