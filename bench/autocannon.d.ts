// The part of autocannon's programmatic API bench/e2e.ts uses (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    interface Request { method?: string, path?: string, headers?: Record<string, string>, body?: string, setupRequest?: (req: Request) => Request }
    interface Options { url: string, connections?: number, duration?: number, amount?: number, requests?: Request[] }
    interface Histogram { p50: number, p99: number, average: number, total: number }
    interface Result { requests: Histogram, latency: Histogram, errors: number, timeouts: number, statusCodeStats: Record<string, { count: number }> }
  }
  function autocannon (options: autocannon.Options): Promise<autocannon.Result>
  export default autocannon
}
