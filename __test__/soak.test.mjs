// Soak and concurrency (issue #6 item 3), bounded to about a minute on two busy cores:
//   * 1,000,000 cached getAwsSecurityCredentials() calls, 10,000 refreshes through the native fetch
//     path and 2,000 failed fetches in a child with gc exposed: RSS growth after warm-up and GC
//     stays under 5 MiB, and no file descriptor leaks (/proc/self/fd before and after);
//   * many suppliers on the main thread and in worker_threads refreshing short-lived credentials at
//     once: no deadlock, and exactly one container request per expiry;
//   * a process that used the supplier and the fetcher (successes, errors, timeouts, an endpoint
//     that is down) exits by itself.
//
// Loopback only: a small credentials server in this process (it stamps Expiration with
// millisecond precision, which the emulator's whole-second wire format cannot) and the emulator.
// Every child gets hermeticEnv().
//
// Run: node --test __test__/soak.test.mjs

import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import { Worker } from 'node:worker_threads'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { here, runNode, unusedPort } from './support.mjs'

makeProcessHermetic()
const INDEX = here('../index.js')
const { ContainerAwsCredentialsSupplier } = createRequire(import.meta.url)(INDEX)
const MiB = 1024 * 1024
const LINUX = process.platform === 'linux'

/**
 * Loopback container credentials endpoint: /long/… lives an hour, /short/… and /shared/… live
 * `lifeMs`, /forbidden answers 403. Every answer carries a new AccessKeyId. Counts per first path
 * segment.
 */
function startCredentialServer({ lifeMs }) {
  const counts = new Map()
  let serial = 0
  const server = createServer((req, res) => {
    const kind = req.url.split('/')[1]
    counts.set(kind, (counts.get(kind) ?? 0) + 1)
    if (kind === 'forbidden') {
      res.writeHead(403, { 'content-type': 'application/json' })
      res.end('{"code":"AccessDenied","message":"soak"}')
      return
    }
    const life = kind === 'long' ? 3_600_000 : lifeMs
    const body = JSON.stringify({
      AccessKeyId: `ASIASOAK${String(++serial).padStart(12, '0')}`,
      SecretAccessKey: 'soak-secret-access-key',
      Token: 'soak-session-token',
      Expiration: new Date(Date.now() + life).toISOString(),
    })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`
      resolve({
        url,
        count: (kind) => counts.get(kind) ?? 0,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(r) }),
      })
    })
  })
}

describe('soak', () => {
  let creds
  before(async () => {
    creds = await startCredentialServer({ lifeMs: 40 })
  })
  after(async () => {
    await creds?.close()
  })

  test('1,000,000 cached calls, 10,000 native refreshes, 2,000 failed fetches: RSS growth < 5 MiB, no fd leak', { timeout: 240_000, skip: !LINUX && '/proc/self/fd is Linux only' }, async () => {
    const env = hermeticEnv({ SOAK_BASE_URL: creds.url })
    const started = performance.now()
    const run = await runNode(here('fixtures/soak-child.mjs'), { env, args: [], timeoutMs: 220_000 })
    const ms = Math.round(performance.now() - started)
    assert.equal(run.timedOut, false, 'the soak child did not finish in time')
    assert.equal(run.code, 0, run.stderr)
    const r = run.result
    const growth = r.after.rss - r.before.rss
    const mib = (k) => `${(r.before[k] / MiB).toFixed(1)} → ${(r.after[k] / MiB).toFixed(1)}`
    // (afterCached / afterRefresh: the same readings between the phases, for diagnosis.)
    const figures = `rss ${mib('rss')} MiB (growth ${(growth / MiB).toFixed(2)} MiB; after cached ${(r.afterCached.rss / MiB).toFixed(1)}, after refresh ${(r.afterRefresh.rss / MiB).toFixed(1)}), heapUsed ${mib('heapUsed')}, external ${mib('external')}, fds ${r.before.fds} → ${r.after.fds}, ` +
      `refreshes ${r.refreshes} (+${r.warmRefreshes} warm-up), errors ${JSON.stringify(r.errorCodes)}, phases ${JSON.stringify(r.ms)}, total ${ms} ms, ` +
      `requests short ${creds.count('short')} long ${creds.count('long')} forbidden ${creds.count('forbidden')}`
    console.log(`# soak: ${figures}`)
    assert.ok(r.refreshes >= 10_000, figures)
    // Every refresh seen is a request the server answered (one request can be seen once only).
    assert.ok(creds.count('short') >= r.refreshes + r.warmRefreshes, figures)
    // A fetch that outlived the 40 ms life ends in CREDENTIALS_EXPIRED; nothing else may happen.
    for (const code of Object.keys(r.errorCodes)) assert.equal(code, 'CREDENTIALS_EXPIRED', figures)
    assert.ok((r.errorCodes.CREDENTIALS_EXPIRED ?? 0) < r.refreshes / 10, figures)
    assert.equal(creds.count('forbidden'), 4000, 'each failed call is one request: failures are never cached')
    assert.equal(creds.count('long'), 1, 'the long-lived credentials were fetched once for 2.8 M calls')
    assert.ok(growth < 5 * MiB, `RSS grew: ${figures}`)
    assert.ok(r.after.fds <= r.before.fds + 2, `file descriptors leaked: ${figures}`)
  })
})

describe('concurrency', () => {
  let creds
  before(async () => {
    creds = await startCredentialServer({ lifeMs: 400 })
  })
  after(async () => {
    await creds?.close()
  })

  test('8 worker_threads and 8 main-thread suppliers refreshing 400 ms credentials for 3 s: no deadlock, one request per expiry', { timeout: 60_000 }, async () => {
    const uri = `${creds.url}/shared/concurrency`
    const RUN_MS = 3000
    // Each thread calls in a loop until its deadline and reports the distinct keys it saw, in order.
    const loopSource = `
      async function drive(supplier, runMs) {
        const seen = []
        const errors = []
        const end = Date.now() + runMs
        while (Date.now() < end) {
          try {
            const c = await supplier.getAwsSecurityCredentials()
            if (seen.at(-1) !== c.accessKeyId) seen.push(c.accessKeyId)
          } catch (e) {
            errors.push(e.code)
          }
          await new Promise((r) => setImmediate(r))
        }
        return { seen, errors }
      }`
    const workerSource = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { ContainerAwsCredentialsSupplier } = require(workerData.index)
      ${loopSource}
      const suppliers = Array.from({ length: 4 }, () => new ContainerAwsCredentialsSupplier({ refreshMarginSeconds: 3600 }))
      parentPort.once('message', async () => {
        const runs = await Promise.all(suppliers.map((s) => drive(s, workerData.runMs)))
        parentPort.postMessage(runs)
      })
      parentPort.postMessage('ready')`
    process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = uri
    const workers = Array.from({ length: 8 }, () => new Worker(workerSource, { eval: true, workerData: { index: INDEX, runMs: RUN_MS } }))
    const mains = Array.from({ length: 8 }, () => new ContainerAwsCredentialsSupplier({ refreshMarginSeconds: 3600 }))
    try {
      const message = (w) => new Promise((resolve, reject) => {
        w.once('message', resolve)
        w.once('error', reject)
      })
      // The native side reads the process environment when a worker constructs its suppliers:
      // keep FULL_URI set until every worker has.
      await Promise.all(workers.map(message))
      delete process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI
      const results = Promise.all(workers.map(message))
      for (const w of workers) w.postMessage('go')
      const drive = new Function(`${loopSource}; return drive`)()
      const mainRuns = await Promise.all(mains.map((s) => drive(s, RUN_MS)))
      const runs = [...(await results).flat(), ...mainRuns]
      assert.equal(runs.length, 40)
      const errors = runs.flatMap((r) => r.errors)
      assert.deepEqual(errors, [], 'no call failed')
      // One process-wide cache: every caller sees the same keys in the same order (a prefix of the
      // issue order, possibly skipping keys it did not happen to ask for while they were current).
      const issued = [...new Set(runs.flatMap((r) => r.seen))].sort()
      for (const r of runs) assert.deepEqual(r.seen, [...r.seen].sort(), 'keys went backwards')
      // Exactly one request per expiry: every key the server handed out was seen, and no more keys
      // were handed out than refresh periods (~200 ms) fit in the run.
      const requests = creds.count('shared')
      console.log(`# concurrency: ${requests} container requests, ${issued.length} distinct keys, 40 suppliers in 9 threads over ${RUN_MS} ms`)
      assert.equal(issued.length, requests, 'a request whose key nobody saw: two fetches for one expiry')
      assert.ok(requests >= 5, `only ${requests} refreshes in ${RUN_MS} ms`)
      assert.ok(requests <= RUN_MS / 150 + 2, `${requests} requests: more than one per expiry`)
    } finally {
      await Promise.all(workers.map((w) => w.terminate()))
    }
  })
})

describe('process exit', () => {
  let em
  before(async () => {
    em = await startEmulator()
  })
  after(async () => {
    await em?.close()
  })

  test('a process that used the supplier and the fetcher (successes, errors, timeouts) exits by itself', { timeout: 30_000 }, async () => {
    em.config = { ...DEFAULT_CONFIG }
    em.fault('container', {}, { hang: true }) // exit-ok answers; exit-hang never does
    em.fault('sts', {}, { hang: true }) // fetcherOk answers; fetcherHang never does
    const down = `http://127.0.0.1:${await unusedPort()}`
    const env = hermeticEnv({ EXIT_EM_URL: em.url, EXIT_DOWN_URL: down, AWS_REGION: 'us-east-1' })
    const started = performance.now()
    const run = await runNode(here('fixtures/exit-child.mjs'), { env, timeoutMs: 20_000 })
    const ms = Math.round(performance.now() - started)
    console.log(`# exit: child exited by itself after ${ms} ms`)
    assert.equal(run.timedOut, false, `the child did not exit by itself within 20 s; stdout: ${run.stdout}`)
    assert.equal(run.signal, null)
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(run.result, {
      supplierOk: { ok: true, kind: 'object' },
      supplierHang: { ok: false, code: 'TIMEOUT' },
      supplierDown: { ok: false, code: 'CREDENTIALS_ENDPOINT_ERROR' },
      fetcherOk: { ok: true, kind: 'object' },
      fetcherHeaders: { ok: true, kind: 'object' },
      fetcherHang: { ok: false, code: 'TIMEOUT' },
      fetcherDown: { ok: false, code: 'STS_EXCHANGE_FAILED' },
    })
  })
})
