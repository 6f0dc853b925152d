// The gate with the real tools: Debian's Prometheus scrapes a running gate, the alert rules
// pass `promtool check rules` and their unit tests (`promtool test rules`), and every Grafana
// panel's query is accepted by that Prometheus and names only series the gate exports.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { eventually } from '../helpers/eventually.ts'
import { REFUSED_PORT } from '../helpers/ports.ts'
import { scrape } from '../helpers/metrics.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PROMETHEUS_DIR = join(ROOT, 'deploy/prometheus')
const GRAFANA_DIR = join(ROOT, 'deploy/grafana')

// A missing Prometheus fails CI (.ci/run installs Debian's prometheus); elsewhere it is skipped.
const installed = (tool: string): boolean => spawnSync(tool, ['--version'], { encoding: 'utf8' }).status === 0
const skip = (tool: string): string | false => !installed(tool) && process.env.CI !== 'true' ? `${tool} is not installed (.ci/run installs Debian's prometheus)` : false

/**
 * Prometheus with `dir`/prometheus.yml on a port of its own (port 0: the address it logs), so
 * that no other test's server can answer in its place; its API's base URL. Stopped after the test.
 */
async function startPrometheus (t: TestContext, dir: string): Promise<{ api: string, prometheus: ChildProcess, log: () => string }> {
  const prometheus = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  let address: string | null = null
  prometheus.stderr!.on('data', (c: Buffer) => {
    log = (log + c.toString()).slice(-4000)
    address ??= /msg="Listening on" address=(127\.0\.0\.1:\d+)/.exec(log)?.[1] ?? null
  })
  const exited = new Promise<void>(resolve => prometheus.once('exit', () => resolve()))
  t.after(async () => { if (prometheus.exitCode === null) { prometheus.kill('SIGTERM'); await exited } })
  const listening = await eventually(() => {
    if (prometheus.exitCode !== null) throw new Error(`prometheus exited: ${log}`)
    return address
  }, { timeoutMs: 30_000, message: 'Prometheus to listen' })
  return { api: `http://${listening}`, prometheus, log: () => log }
}

function promtool (...args: string[]): string {
  const run = spawnSync('promtool', args, { cwd: PROMETHEUS_DIR, encoding: 'utf8' })
  assert.equal(run.status, 0, `promtool ${args.join(' ')}:\n${run.stdout}\n${run.stderr}`)
  return run.stdout
}

const ruleFiles = (): string[] => readdirSync(PROMETHEUS_DIR).filter(f => /\.ya?ml$/.test(f) && !f.endsWith('.test.yml'))

test('promtool: the alert rules are valid, and each alert fires on its failure and stays silent when healthy', { skip: skip('promtool') }, () => {
  const files = ruleFiles()
  assert.ok(files.length > 0)
  assert.match(promtool('check', 'rules', ...files), /SUCCESS/)
  const alerts = files.flatMap(f => (parse(readFileSync(join(PROMETHEUS_DIR, f), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string }> }> })
    .groups.flatMap(g => g.rules.flatMap(r => r.alert === undefined ? [] : [r.alert])))
  const unitFile = 'alerts.test.yml'
  const unit = parse(readFileSync(join(PROMETHEUS_DIR, unitFile), 'utf8')) as { rule_files: string[], tests: Array<{ alert_rule_test: Array<{ alertname: string, exp_alerts?: unknown[] }> }> }
  assert.deepEqual([...unit.rule_files].sort(), [...files].sort(), 'the unit tests load every rules file')
  const cases = unit.tests.flatMap(t => t.alert_rule_test)
  for (const alert of alerts) {
    assert.ok(cases.some(c => c.alertname === alert && (c.exp_alerts?.length ?? 0) > 0), `${alert} has a test where it fires`)
    assert.ok(cases.some(c => c.alertname === alert && (c.exp_alerts?.length ?? 0) === 0), `${alert} has a test where it stays silent`)
  }
  assert.match(promtool('test', 'rules', unitFile), /SUCCESS/)
})

/** Grafana's variables, replaced as Grafana would before the query reaches Prometheus. */
function substituteGrafana (expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?instance\}?/g, '.*')
}

/** Every `expr` of a Grafana dashboard, panels inside rows included. */
function dashboardExprs (node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(dashboardExprs)
  if (node === null || typeof node !== 'object') return []
  return Object.entries(node).flatMap(([key, value]) => key === 'expr' && typeof value === 'string' ? [value] : dashboardExprs(value))
}

test('a real Prometheus scrapes the gate: series and labels through its HTTP API; every dashboard query evaluates', { skip: skip('prometheus') }, async (t) => {
  const g = await startTestGate(t)
  // An allow, a deny and a request without a job token.
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })).status, 200)
  assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', { 'job-token': TOKENS.app })).status, 403)
  await send(g.url, 'GET', '/api/v4/projects/200/variables', { 'private-token': 'glpat-someone0000000000' })

  const dir = mkdtempSync(join(tmpdir(), 'jtg-prometheus-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const target = new URL(g.healthUrl).host
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    ...ruleFiles().map(f => `  - ${JSON.stringify(join(PROMETHEUS_DIR, f))}`),
    'scrape_configs:',
    '  - job_name: job-token-gate',
    '    static_configs:',
    `      - targets: [${JSON.stringify(target)}]`,
    ''
  ].join('\n'))
  const { api, prometheus, log } = await startPrometheus(t, dir)

  const query = async (expr: string): Promise<{ status: string, error?: string, data?: { resultType: string, result: Array<{ metric: Record<string, string>, value: [number, string] }> } }> => {
    const res = await send(api, 'GET', `/api/v1/query?query=${encodeURIComponent(expr)}`)
    return res.json()
  }

  // The scrape is up, and the request counter carries the decisions made above.
  await eventually(async () => {
    if (prometheus.exitCode !== null) throw new Error(`prometheus exited: ${log()}`)
    const up = await query('up{job="job-token-gate"}')
    return up.data?.result[0]?.value[1] === '1'
  }, { timeoutMs: 30_000, message: 'Prometheus to scrape the gate' })
  const requests = await eventually(async () => {
    const r = await query('job_token_gate_requests_total')
    return r.data !== undefined && r.data.result.length >= 3 ? r.data.result : null
  }, { timeoutMs: 30_000, message: 'the request series in Prometheus' })
  const byDecision = new Map(requests.map(s => [s.metric.decision, s.metric]))
  assert.equal(byDecision.get('allow')?.job, 'job-token-gate')
  assert.equal(byDecision.get('allow')?.instance, target)
  assert.equal(byDecision.get('allow')?.resource, 'packages')
  assert.equal(byDecision.get('deny')?.reason, 'MISSING_POLICIES')
  assert.ok(byDecision.has('no_job_token'))
  for (const series of requests) {
    for (const label of Object.keys(series.metric)) {
      assert.ok(['__name__', 'job', 'instance', 'decision', 'reason', 'resource', 'method'].includes(label), `requests_total has a bounded label set, not ${label}`)
    }
  }
  const buckets = await query('job_token_gate_decision_duration_seconds_bucket')
  assert.ok((buckets.data?.result.length ?? 0) > 0, 'the decision histogram is scraped')

  // The alert rules load into this Prometheus and evaluate against the gate's real series.
  const evaluated = await eventually(async () => {
    const all = ((await send(api, 'GET', '/api/v1/rules')).json().data.groups as Array<{ rules: Array<{ name: string, health: string, lastError?: string }> }>).flatMap(gr => gr.rules)
    return all.length > 0 && all.every(r => r.health !== 'unknown') ? all : null
  }, { timeoutMs: 30_000, message: 'every rule evaluated once' })
  for (const rule of evaluated) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`)

  // Every dashboard query parses and evaluates here, and names only series the gate exports.
  const exported = new Set((await scrape(g.healthUrl)).samples.map(s => s.name))
  const files = readdirSync(GRAFANA_DIR).filter(f => f.endsWith('.json'))
  assert.ok(files.length > 0)
  let checked = 0
  for (const file of files) {
    for (const expr of dashboardExprs(JSON.parse(readFileSync(join(GRAFANA_DIR, file), 'utf8')))) {
      const promql = substituteGrafana(expr)
      assert.doesNotMatch(promql, /\$/, `${file}: an unsubstituted Grafana variable in ${expr}`)
      const answer = await query(promql)
      assert.equal(answer.status, 'success', `${file}: ${expr}: ${answer.error ?? ''}`)
      for (const [name] of promql.matchAll(/\bjob_token_gate_[a-z0-9_]+/g)) assert.ok(exported.has(name), `${file}: ${name} is exported by the gate (${expr})`)
      checked++
    }
  }
  assert.ok(checked >= 20, `${checked} dashboard queries checked`)
  // And the check can fail: a query Prometheus refuses.
  assert.equal((await query('sum(rate(job_token_gate_requests_total[1m])')).status, 'error')
})

/** An alert rule's expression, as alerts.yml writes it. */
function alertExpr (name: string): string {
  const rules = ruleFiles().flatMap(f => (parse(readFileSync(join(PROMETHEUS_DIR, f), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string, expr: string }> }> }).groups.flatMap(g => g.rules))
  const rule = rules.find(r => r.alert === name)
  assert.ok(rule !== undefined, name)
  return rule.expr
}

// A series appears only once a request has counted in it: a gate that never saw GitLab answer
// 5xx exports no `5xx` series, and `a + b` of an absent side is no value at all. The alert for
// an unreachable GitLab stayed silent on every replica that had not seen a 5xx before.
test('a real Prometheus: JobTokenGateUpstreamErrors holds for a gate that cannot reach GitLab', { skip: skip('prometheus') }, async (t) => {
  const g = await startTestGate(t, { GATE_UPSTREAM_URL: `http://127.0.0.1:${REFUSED_PORT}` })
  const dir = mkdtempSync(join(tmpdir(), 'jtg-prometheus-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const target = new URL(g.healthUrl).host
  writeFileSync(join(dir, 'prometheus.yml'), ['global:', '  scrape_interval: 1s', 'scrape_configs:', '  - job_name: job-token-gate', '    static_configs:', `      - targets: [${JSON.stringify(target)}]`, ''].join('\n'))
  const { api } = await startPrometheus(t, dir)
  const expr = alertExpr('JobTokenGateUpstreamErrors')
  const result = await eventually(async () => {
    // Traffic between scrapes, every request a 502: the counters rise.
    assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })).status, 502)
    const exported = (await scrape(g.healthUrl)).samples
    assert.ok(!exported.some(s => s.name === 'job_token_gate_upstream_responses_total' && s.labels.status_class === '5xx'), 'the gate exports no 5xx series')
    const answer = (await send(api, 'GET', `/api/v1/query?query=${encodeURIComponent(expr)}`)).json() as { data?: { result: Array<{ value: [number, string] }> } }
    return answer.data !== undefined && answer.data.result.length > 0 ? answer.data.result : null
  }, { timeoutMs: 30_000, intervalMs: 250, message: 'the alert expression to hold' })
  assert.equal(Number(result[0]!.value[1]), 1, 'every request failed upstream')
})
