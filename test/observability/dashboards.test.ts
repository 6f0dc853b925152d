// The Grafana dashboard and the Prometheus alerts query only metrics (and labels) the gate
// exports: a renamed metric breaks this test, not a dashboard nobody looks at until an outage.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, type Sample } from '../helpers/metrics.ts'

const root = new URL('../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')

/** Every `expr` of a Grafana dashboard, panels inside rows included. */
function dashboardExprs (node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(dashboardExprs)
  if (node === null || typeof node !== 'object') return []
  return Object.entries(node).flatMap(([key, value]) => key === 'expr' && typeof value === 'string' ? [value] : dashboardExprs(value))
}

/** The rules of a Prometheus rules file: `alert` and `expr` (plain or block scalars), as written in deploy/. */
function alertRules (yaml: string): Array<{ alert: string, expr: string, severity: string | undefined }> {
  const lines = yaml.split('\n')
  const rules: Array<{ alert: string, expr: string, severity: string | undefined }> = []
  for (let i = 0; i < lines.length; i++) {
    const alert = /^\s*- alert: (\S+)\s*$/.exec(lines[i]!)
    if (alert !== null) { rules.push({ alert: alert[1]!, expr: '', severity: undefined }); continue }
    const current = rules.at(-1)
    const severity = /^\s+severity: (\S+)\s*$/.exec(lines[i]!)
    if (severity !== null && current !== undefined) current.severity = severity[1]
    const expr = /^(\s*)expr: (.*)$/.exec(lines[i]!)
    if (expr === null || current === undefined) continue
    if (!/^[>|]-?$/.test(expr[2]!.trim())) { current.expr = expr[2]!.trim(); continue }
    const indent = expr[1]!.length
    const block: string[] = []
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > indent)) block.push(lines[++i]!.trim())
    current.expr = block.join(' ').trim()
  }
  return rules
}

const METRIC = /\b((?:job_token_gate|process|nodejs)_[a-z0-9_]+)\b/g
const SELECTOR = /\b(job_token_gate_[a-z0-9_]+)\{([^}]*)\}/g

function checkExprs (where: string, exprs: readonly string[], samples: readonly Sample[]): number {
  const names = new Set(samples.map(s => s.name))
  const labels = new Map<string, Set<string>>()
  for (const s of samples) {
    const set = labels.get(s.name) ?? new Set(['instance', 'job'])
    for (const l of Object.keys(s.labels)) set.add(l)
    labels.set(s.name, set)
  }
  let checked = 0
  for (const expr of exprs) {
    for (const [, name] of expr.matchAll(METRIC)) {
      assert.ok(names.has(name!), `${where}: ${name} is not in /metrics (in: ${expr})`)
      checked++
    }
    for (const [, name, selector] of expr.matchAll(SELECTOR)) {
      for (const [, label] of selector!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) {
        assert.ok(labels.get(name!)?.has(label!), `${where}: ${name} has no label ${label} (in: ${expr})`)
      }
    }
  }
  return checked
}

test('every metric the dashboard and the alerts query is exported', async (t) => {
  const g = await startTestGate(t)
  // Traffic that creates every labelled series: an allow, a deny, a forward, an identity call.
  await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', { 'job-token': TOKENS.app })
  await send(g.url, 'GET', '/api/v4/projects/200/variables', { 'private-token': 'glpat-someone0000000000' })
  const { samples } = await scrape(g.healthUrl)

  const dashboard = JSON.parse(read('deploy/grafana/job-token-gate.json')) as { panels: unknown[], uid: string }
  assert.equal(dashboard.uid, 'job-token-gate')
  const exprs = dashboardExprs(dashboard)
  assert.ok(exprs.length >= 20, `the dashboard has ${exprs.length} queries`)
  const titles = JSON.stringify(dashboard.panels)
  for (const title of ['Requests by decision', 'Top deny reasons', 'Decision latency', 'Grant cache hit ratio', 'Store up']) assert.ok(titles.includes(title), title)
  const inDashboard = checkExprs('dashboard', exprs, samples)
  assert.ok(inDashboard >= exprs.length, 'every query names at least one metric')

  const rules = alertRules(read('deploy/prometheus/alerts.yml'))
  const names = rules.map(r => r.alert)
  for (const required of ['JobTokenGateDenySpike', 'JobTokenGateStoreDown', 'JobTokenGateUpstreamErrors', 'JobTokenGateDecisionLatencyHigh']) assert.ok(names.includes(required), required)
  for (const rule of rules) {
    assert.notEqual(rule.expr, '', `${rule.alert} has an expr`)
    assert.ok(rule.severity !== undefined, `${rule.alert} has a severity`)
    assert.equal((rule.expr.match(/\(/g) ?? []).length, (rule.expr.match(/\)/g) ?? []).length, `${rule.alert}: balanced parentheses`)
  }
  assert.ok(checkExprs('alerts', rules.map(r => r.expr), samples) >= rules.length)
})

test('the checker catches a metric the gate does not export', () => {
  assert.throws(() => checkExprs('probe', ['rate(job_token_gate_no_such_metric_total[5m])'], [{ name: 'job_token_gate_requests_total', labels: {}, value: 1 }]), /not in \/metrics/)
  assert.throws(() => checkExprs('probe', ['rate(job_token_gate_requests_total{verdict="deny"}[5m])'], [{ name: 'job_token_gate_requests_total', labels: { decision: 'deny' }, value: 1 }]), /has no label verdict/)
  assert.deepEqual(alertRules('groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: >-\n          sum(\n            up)\n        labels:\n          severity: page\n').map(r => [r.alert, r.expr, r.severity]), [['A', 'sum( up)', 'page']])
})
