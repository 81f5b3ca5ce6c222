// Rows, verdicts and rendering (console table and Markdown) for bench.mjs.
//
// A row: {metric, unit, ours, js, target, method, note?}. `ours` and `js` are an array of samples
// (the median is quoted), a single number, or null (not measured). `target` is one of
//   {ratio: 0.25}   ours/js medians ≤ 0.25
//   {max: 1}        ours median ≤ 1 (in the row's unit)
//   {equals: 1}     ours median = 1
//   null            informational
// A row with `note` and no `ours` is skipped (SKIP), e.g. while the native fetcher does not exist.

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The quoted value of a side: the median of its samples, or the number itself. */
export function quoted(side) {
  if (side == null) return null
  return Array.isArray(side) ? median(side) : side
}

export function ratio(row) {
  const [ours, js] = [quoted(row.ours), quoted(row.js)]
  return ours != null && js ? ours / js : null
}

export function verdict(row) {
  const ours = quoted(row.ours)
  if (ours == null) return 'SKIP'
  const { target } = row
  if (!target) return '—'
  if ('ratio' in target) return ratio(row) != null && ratio(row) <= target.ratio ? 'PASS' : 'MISS'
  if ('max' in target) return ours <= target.max ? 'PASS' : 'MISS'
  return ours === target.equals ? 'PASS' : 'MISS'
}

function targetText(row) {
  const { target, unit } = row
  if (!target) return ''
  if ('ratio' in target) return `≤ ${target.ratio}×`
  if ('max' in target) return `≤ ${target.max} ${unit}`
  return `= ${target.equals}`
}

/** A number in the row's unit, with sensible precision. */
export function formatValue(value, unit = '') {
  if (value == null) return '–'
  const digits = Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : Math.abs(value) >= 10 ? 1 : 2
  const text = value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
  return unit ? `${text} ${unit}` : text
}

const formatRatio = (r) => (r == null ? '–' : `${r.toFixed(r < 0.1 ? 3 : 2)}×`)

function cells(row) {
  return {
    metric: row.metric,
    ours: row.ours == null && row.note ? row.note : formatValue(quoted(row.ours), row.unit),
    js: formatValue(quoted(row.js), row.unit),
    ratio: formatRatio(ratio(row)),
    target: targetText(row),
    verdict: verdict(row),
  }
}

const COLUMNS = [
  ['metric', 'metric'],
  ['ours', 'ours (median)'],
  ['js', 'JS reference (median)'],
  ['ratio', 'ours/JS'],
  ['target', 'target'],
  ['verdict', 'verdict'],
]

/** A plain aligned table for the terminal. */
export function consoleTable(rows) {
  const data = rows.map(cells)
  const widths = COLUMNS.map(([key, title]) => Math.max(title.length, ...data.map((d) => String(d[key]).length)))
  const line = (values) => values.map((v, i) => String(v).padEnd(widths[i])).join('  ').trimEnd()
  return [line(COLUMNS.map(([, title]) => title)), line(widths.map((w) => '-'.repeat(w))), ...data.map((d) => line(COLUMNS.map(([key]) => d[key])))].join('\n')
}

const mdRow = (values) => `| ${values.map((v) => String(v).replaceAll('|', '\\|')).join(' | ')} |`

/** The results table in Markdown, with the method of each row. */
export function markdownTable(rows) {
  const head = [...COLUMNS.map(([, title]) => title), 'method']
  return [mdRow(head), mdRow(head.map(() => '---')), ...rows.map((row) => mdRow([...COLUMNS.map(([key]) => cells(row)[key]), row.method]))].join('\n')
}

/** n, min, median and max of each side's samples, for the rows that have samples. */
export function markdownSamples(rows) {
  const spread = (side, unit) =>
    Array.isArray(side) ? `${side.length} | ${formatValue(Math.min(...side), unit)} | ${formatValue(median(side), unit)} | ${formatValue(Math.max(...side), unit)}` : '– | – | – | –'
  const lines = rows.filter((row) => Array.isArray(row.ours) || Array.isArray(row.js)).map((row) => `| ${row.metric} | ${spread(row.ours, row.unit)} | ${spread(row.js, row.unit)} |`)
  return ['| metric | ours n | min | median | max | JS n | min | median | max |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |', ...lines].join('\n')
}

/** The fleet simulation's scenarios in Markdown. */
export function markdownFleet(scenarios, quotas) {
  const pct = (x) => `${(x * 100).toFixed(x < 0.1 ? 1 : 0)} %`
  const lines = scenarios.map((s) =>
    mdRow([s.name, formatValue(s.startPeak), `${pct(s.startPeakOfStsQuota)} of STS`, s.hourlyPeaks.map((p) => formatValue(p)).join(' · '), formatValue(s.lastHourPeak), `${pct(s.lastHourPeakOfStsQuota)} of STS, ${pct(s.lastHourPeakOfIamQuota)} of IAM`, formatValue(s.averagePerMinute)]),
  )
  return [
    mdRow(['refresh policy', 'start burst (exchanges/min)', 'vs quota', 'peak minute of each hour', 'last-hour peak /min', 'vs quotas', 'average /min']),
    mdRow(Array(7).fill('---')),
    ...lines,
    '',
    `Quotas assumed (Google Cloud defaults per project, cloud.google.com/iam/quotas): Security Token Service API exchange token requests ${formatValue(quotas.stsPerMinute)}/min; Service Account Credentials API generate-credentials requests ${formatValue(quotas.iamPerMinute)}/min. Each exchange here is one of each.`,
  ].join('\n')
}
