// One measurement in a fresh process, started by bench.mjs with a hermetic environment:
//
//   node __test__/bench/probe.mjs <mode> <side>
//
// Prints one JSON line on stdout with the measurement; anything else goes to stderr and a non-zero
// exit means the probe itself broke (which bench.mjs reports as a functional failure). Modes:
//
//   cold          import time and RSS added by the import, then (construction excluded) the latency
//                 of the first getAwsSecurityCredentials()
//   concurrent    1000 getAwsSecurityCredentials() started together on a cold supplier
//   workers       8 worker_threads, each importing the module, constructing its own supplier, calling once
//   gal-cold      first AwsClient.getAccessToken() (supplier, SigV4, Google STS, IAM impersonation)
//   fetcher-cold  first GoogleTokenFetcher.getAccessToken() (ours only)
//   headers-cold  first getRequestHeaders(): ours through GoogleTokenFetcher.authClient(), js through
//                 AwsClient with the reference supplier (import and construction excluded)
//   refresh       sequential requests (authClient.request: a BigQuery jobs.query to the emulator) for
//                 BENCH_REFRESH_MS (after 50 warm-up requests), with a 600 s token due for refresh 1 s
//                 after it is issued (the federated token too), while the parent delays the emulator's
//                 STS by 500 ms. The refresh window: the requests started from 100 ms before the token
//                 is due until 100 ms after the client first hands out the refreshed token. Reported:
//                 the slowest request of that window against the median of the whole run, and the
//                 slowest of the whole run for comparison
//                 (ours: authClient() with background refresh; js: AwsClient, eagerRefreshThresholdMillis 599 s)
//                 (BENCH_DETAIL=1 adds the five slowest requests with their index, and the six
//                 slowest of the window with their start in ms after the token was due)
//   worker-exchanges  8 worker_threads, each with its own client (ours: authClient(); js: AwsClient +
//                 reference supplier), each getting a token; the parent counts STS + IAM requests
//   cached        ns/op of warm calls, both sides in this one process, interleaved rep by rep
//                 (side is ignored): the supplier, AwsClient.getAccessToken(), the native fetcher
//   metadata      µs per cached token request to the metadata server (fetcher.serveMetadata(), in a
//                 worker thread: a sidecar's own event loop), both sides in this process, interleaved
//                 rep by rep (side is ignored): ours a node:http keep-alive GET of
//                 …/service-accounts/default/token, js gcp-metadata's instance() as google-auth-library's
//                 Compute client calls it (its own copy of gcp-metadata)
//
// Timing is performance.now() / process.hrtime around the call only; nothing but node builtins is
// loaded before the measured import.

import http from 'node:http'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { NO_FETCHER, SIDES, awsClientOptions, benchConfig, fetcherOptions, importSide, makeFetcher } from './sides.mjs'

const CONCURRENT_CALLS = 1000
const WORKERS = 8
const CACHED = { warmup: 10_000, reps: 7, supplierOps: 100_000, galOps: 20_000, fetcherOps: 100_000, headersOps: 20_000 }
const METADATA = { warmup: 2000, reps: 7, ops: 1000 }
const TOKEN_PROPERTY = 'service-accounts/default/token'
const REFRESH_MS = Number(process.env.BENCH_REFRESH_MS ?? 3000)
const REFRESH_WARMUP = 50
const QUERY = 'SELECT greeting, principal, n FROM emulator'

/** Milliseconds taken by `fn()` and its result. */
async function timed(fn) {
  const start = performance.now()
  const value = await fn()
  return { ms: performance.now() - start, value }
}

/** Mean nanoseconds per sequential `await fn()` over `ops` calls. */
async function nsPerOp(fn, ops) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < ops; i++) await fn()
  return Number(process.hrtime.bigint() - start) / ops
}

async function cold(side) {
  const rssBefore = process.memoryUsage().rss
  const { ms: importMs, value: mod } = await timed(() => importSide(side))
  const rssAfter = process.memoryUsage().rss
  const { ms: constructMs, value: supplier } = await timed(() => new mod.Supplier())
  const { ms: firstCallMs, value: creds } = await timed(() => supplier.getAwsSecurityCredentials())
  return { importMs, rssAddedBytes: rssAfter - rssBefore, constructMs, firstCallMs, accessKeyId: creds.accessKeyId }
}

async function concurrent(side) {
  const { Supplier } = await importSide(side)
  const supplier = new Supplier()
  const start = performance.now()
  const doneAt = []
  const calls = Array.from({ length: CONCURRENT_CALLS }, () =>
    supplier.getAwsSecurityCredentials().then((c) => {
      doneAt.push(performance.now() - start)
      return c.accessKeyId
    }),
  )
  const keys = await Promise.all(calls)
  doneAt.sort((a, b) => a - b)
  return { calls: CONCURRENT_CALLS, allSettledMs: performance.now() - start, medianCallMs: doneAt[doneAt.length >> 1], distinctKeys: new Set(keys).size }
}

/** Runs inside each worker thread of `workers` and `worker-exchanges`. */
async function workerBody({ side, exchanges, metadataServer }) {
  if (metadataServer) {
    const { GoogleTokenFetcher } = await importSide('ours')
    const server = await new GoogleTokenFetcher(fetcherOptions()).serveMetadata()
    parentPort.postMessage({ host: server.host, port: server.port })
    return
  }
  if (exchanges) {
    const client = await authClientFor(side)
    const { token } = await client.getAccessToken()
    parentPort.postMessage({ token })
    return
  }
  const { Supplier } = await importSide(side)
  const creds = await new Supplier().getAwsSecurityCredentials()
  parentPort.postMessage({ accessKeyId: creds.accessKeyId })
}

/** The client whose getRequestHeaders() is compared: ours through authClient(), js through AwsClient. */
async function authClientFor(side, extra = {}) {
  const [{ AwsClient }, { Supplier, GoogleTokenFetcher }] = await Promise.all([import('google-auth-library'), importSide(side)])
  if (side === 'ours') return new GoogleTokenFetcher({ ...fetcherOptions(), ...extra.fetcher }).authClient()
  return new AwsClient({ ...awsClientOptions(new Supplier()), ...extra.gal })
}

function runWorker(side, data = {}) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { side, ...data } })
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)))
  })
}

async function workers(side) {
  const { ms, value } = await timed(() => Promise.all(Array.from({ length: WORKERS }, () => runWorker(side))))
  return { workers: WORKERS, allSettledMs: ms, distinctKeys: new Set(value.map((m) => m.accessKeyId)).size }
}

async function workerExchanges(side) {
  const { ms, value } = await timed(() => Promise.all(Array.from({ length: WORKERS }, () => runWorker(side, { exchanges: true }))))
  return { workers: WORKERS, allSettledMs: ms, distinctTokens: new Set(value.map((m) => m.token)).size }
}

async function headersCold(side) {
  const client = await authClientFor(side)
  const { ms, value } = await timed(() => client.getRequestHeaders())
  const authorization = typeof value.get === 'function' ? value.get('authorization') : value.authorization
  return { ms, tokenKind: String(authorization).split('.')[1] }
}

/** Latencies of sequential requests across a token refresh (see the header). */
async function refresh(side) {
  const lifetime = 600
  const client = await authClientFor(side, {
    fetcher: { serviceAccountImpersonation: { tokenLifetimeSeconds: lifetime }, refreshMarginSeconds: lifetime - 1, refreshJitterSeconds: 0 },
    gal: { service_account_impersonation: { token_lifetime_seconds: lifetime }, eagerRefreshThresholdMillis: (lifetime - 1) * 1000 },
  })
  const url = `${benchConfig().url}/bigquery/v2/projects/my-project/queries`
  const first = (await client.getAccessToken()).token
  // Both clients keep google-auth-library's `credentials.expiry_date` of the token they hand out.
  const dueAt = client.credentials.expiry_date - (lifetime - 1) * 1000
  // Warm up (the first requests of a process pay for loading and compiling the HTTP stack), well
  // before the token's refresh is due.
  for (let i = 0; i < REFRESH_WARMUP; i++) await client.request({ url, method: 'POST', data: { query: QUERY } })
  const latencies = []
  const window = []
  const trace = []
  let refreshedAt = null
  const start = performance.now()
  const startWall = Date.now()
  let windowFrom = null
  while (performance.now() - start < REFRESH_MS) {
    const startedAt = Date.now()
    const t0 = performance.now()
    await client.request({ url, method: 'POST', data: { query: QUERY } })
    const ms = performance.now() - t0
    latencies.push(ms)
    if (startedAt < dueAt - 100 || (refreshedAt !== null && startedAt > refreshedAt + 100)) continue
    windowFrom ??= latencies.length - 1
    window.push(ms)
    if (process.env.BENCH_DETAIL) trace.push([startedAt - dueAt, Math.round(ms * 100) / 100])
    // Read without asking for a token (asking would refresh google-auth-library's client outside the timing).
    if (refreshedAt === null && client.credentials.access_token !== first) refreshedAt = Date.now()
  }
  const refreshed = refreshedAt !== null
  const sorted = [...latencies].sort((a, b) => a - b)
  const median = sorted[sorted.length >> 1]
  const windowMax = Math.max(...window)
  const detail = process.env.BENCH_DETAIL ? { slowest: latencies.map((ms, i) => [i, Math.round(ms)]).sort((a, b) => b[1] - a[1]).slice(0, 5), dueIn: dueAt - startWall, refreshedIn: refreshedAt - startWall, windowFrom: windowFrom, windowSlowest: trace.sort((a, b) => b[1] - a[1]).slice(0, 6), refreshedAfterDue: refreshedAt - dueAt } : {}
  return {
    requests: latencies.length,
    windowRequests: window.length,
    medianMs: median,
    maxMs: windowMax,
    maxOverMedianMs: windowMax - median,
    runMaxOverMedianMs: sorted.at(-1) - median,
    refreshed,
    ...detail,
  }
}

async function galCold(side) {
  const [{ AwsClient }, { Supplier }] = await Promise.all([import('google-auth-library'), importSide(side)])
  const client = new AwsClient(awsClientOptions(new Supplier()))
  const { ms, value } = await timed(() => client.getAccessToken())
  return { ms, tokenKind: String(value.token).split('.')[1] }
}

async function fetcherCold() {
  const fetcher = makeFetcher((await importSide('ours')).GoogleTokenFetcher)
  if (!fetcher) return { skipped: NO_FETCHER }
  const { ms, value } = await timed(() => fetcher.getAccessToken())
  return { ms, tokenKind: String(value.token).split('.')[1] }
}

/** The warm operations to time, per side: {supplier, gal, fetcher?}. */
async function warmOperations() {
  const { AwsClient } = await import('google-auth-library')
  const ops = {}
  for (const side of SIDES) {
    const { Supplier, GoogleTokenFetcher } = await importSide(side)
    const supplier = new Supplier()
    const client = new AwsClient(awsClientOptions(supplier))
    ops[side] = { supplier: () => supplier.getAwsSecurityCredentials(), gal: () => client.getAccessToken() }
    const fetcher = makeFetcher(GoogleTokenFetcher)
    if (fetcher) ops[side].fetcher = () => fetcher.getAccessToken()
    const headersClient = side === 'ours' ? fetcher?.authClient() : client
    if (headersClient) ops[side].headers = () => headersClient.getRequestHeaders()
  }
  return ops
}

async function cached() {
  const ops = await warmOperations()
  const samples = { supplier: { ours: [], js: [] }, gal: { ours: [], js: [] }, fetcher: { ours: [] }, headers: { ours: [], js: [] } }
  const targets = [
    ['supplier', CACHED.supplierOps],
    ['gal', CACHED.galOps],
    ['fetcher', CACHED.fetcherOps],
    ['headers', CACHED.headersOps],
  ]
  for (const [name] of targets) for (const side of SIDES) if (ops[side][name]) await nsPerOp(ops[side][name], CACHED.warmup)
  for (let rep = 0; rep < CACHED.reps; rep++) {
    // Alternate which side goes first, so neither always runs right after the other's garbage.
    const order = rep % 2 ? [...SIDES].reverse() : SIDES
    for (const [name, n] of targets) for (const side of order) if (ops[side][name]) samples[name][side].push(await nsPerOp(ops[side][name], n))
  }
  if (!ops.ours.fetcher) samples.fetcher = { skipped: NO_FETCHER }
  return { ...samples, ops: CACHED }
}

/** Cached token requests to the metadata server: node:http keep-alive (ours) vs gcp-metadata (js); see the header. */
async function metadata() {
  const { host, port } = await runWorker('ours', { metadataServer: true })
  // gcp-metadata reads these on every request; both, so that nothing can go to 169.254.169.254.
  process.env.GCE_METADATA_HOST = process.env.GCE_METADATA_IP = `${host}:${port}`
  const gcpMetadata = createRequire(createRequire(import.meta.url).resolve('google-auth-library'))('gcp-metadata')
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const options = { host, port, agent, path: `/computeMetadata/v1/instance/${TOKEN_PROPERTY}`, headers: { 'Metadata-Flavor': 'Google' } }
  const raw = () =>
    new Promise((resolve, reject) => {
      http
        .get(options, (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (chunk) => (body += chunk))
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`metadata token: HTTP ${res.statusCode} ${body}`))))
        })
        .on('error', reject)
    })
  const ops = { ours: raw, js: () => gcpMetadata.instance({ property: TOKEN_PROPERTY }) }
  // The first request makes the one exchange; every later one is served from the fetcher's cache.
  const first = { ours: await ops.ours(), js: await ops.js() }
  for (const side of SIDES) await nsPerOp(ops[side], METADATA.warmup)
  const samples = { ours: [], js: [] }
  for (let rep = 0; rep < METADATA.reps; rep++) {
    const order = rep % 2 ? [...SIDES].reverse() : SIDES
    for (const side of order) samples[side].push((await nsPerOp(ops[side], METADATA.ops)) / 1000)
  }
  const last = { ours: await ops.ours(), js: await ops.js() }
  const tokens = new Set(SIDES.flatMap((side) => [first[side].access_token, last[side].access_token]))
  return { ...samples, tokenKind: String(first.ours.access_token).split('.')[1], sameToken: tokens.size === 1, expiresIn: last.js.expires_in, ops: METADATA }
}

const MODES = { cold, concurrent, workers, 'gal-cold': galCold, 'fetcher-cold': fetcherCold, 'headers-cold': headersCold, refresh, 'worker-exchanges': workerExchanges, cached, metadata }

async function main() {
  const [mode, side = 'ours'] = process.argv.slice(2)
  const run = MODES[mode]
  if (!run) throw new Error(`unknown mode "${mode}"; expected one of ${Object.keys(MODES).join(', ')}`)
  const result = await run(side)
  process.stdout.write(`${JSON.stringify(result)}\n`)
  // The native addon's runtime or open sockets must not keep a finished probe alive.
  process.exit(0)
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err?.stack ?? String(err))
    process.exit(1)
  })
} else {
  workerBody(workerData).catch((err) => {
    console.error(err?.stack ?? String(err))
    process.exit(1)
  })
}
