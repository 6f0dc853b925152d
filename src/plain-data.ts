// Two helpers for plain JSON-shaped data, shared by the catalog loader (src/catalog/load.ts)
// and the grants model (src/grants/model.ts, src/grants/package-rules-model.ts).

/** A plain object: not null, not an array. */
export function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Freezes `value` and everything reachable from it; returns it. */
export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
