// Waiting on an event in tests: poll a probe until it holds, instead of sleeping a fixed time
// and hoping the machine was fast enough. The timeout only detects a hang; it is never a
// latency target (those live in bench/).

export interface EventuallyOptions {
  /** Give up after this long (default 10 s): generous, so a busy machine does not fail the test. */
  readonly timeoutMs?: number
  /** Pause between tries (default 20 ms). */
  readonly intervalMs?: number
  /** What was awaited, for the failure message. */
  readonly message?: string
}

/**
 * Resolves with the first value of `probe` that is neither `false`, `null` nor `undefined`;
 * a probe that throws is tried again (its last error is the failure's cause).
 */
export async function eventually<T> (probe: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<Exclude<T, false | null | undefined>> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const intervalMs = options.intervalMs ?? 20
  const deadline = performance.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== false && value !== null && value !== undefined) return value as Exclude<T, false | null | undefined>
    } catch (err) {
      lastError = err
    }
    if (performance.now() > deadline) {
      throw new Error(`${options.message ?? 'condition'} did not hold within ${timeoutMs} ms`, lastError === undefined ? undefined : { cause: lastError })
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}
