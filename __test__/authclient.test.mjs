// GoogleTokenFetcher on the client libraries' path (issue #11): `authClient()` (an instance of the
// application's google-auth-library client, used by @google-cloud/bigquery and GoogleAuth),
// `getIdToken()` and `idTokenClient()` (Cloud Run / IAP), and `invalidate()`, against the loopback
// emulator: its generateIdToken route and its "Cloud Run" stand-in, which accepts only an ID token
// whose aud is its URL.
//
// Behaviour under test: one exchange for 8 worker_threads; a 401 drops the rejected token (only that
// one) and retries once, never a streamed body; inside the refresh window no request waits for STS
// (counted: all requests done while the delayed STS answer is still pending); a failed background
// refresh keeps serving the valid token.
//
// Runs on the default stack (google-auth-library 10, BigQuery 8) and, through .ci/run with
// WIF_TEST_DEPS_DIR, on google-auth-library 11 / BigQuery 9 / Node 22 (stack.mjs). Every fetcher uses
// a FULL_URI path of its own (freshEnv), so its caches are cold.
//
// Run: node --test __test__/authclient.test.mjs

import assert from 'node:assert/strict'
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join, sep } from 'node:path'
import { Readable } from 'node:stream'
import { after, afterEach, before, beforeEach, describe, test } from 'node:test'
import { inspect } from 'node:util'
import { pathToFileURL } from 'node:url'
import { addonPath } from './support/ensure-addon.mjs'
import { DEFAULT_CONFIG, emulatorSignature, hermeticEnv, makeProcessHermetic, startEmulator, verifyJwt } from './emulator/index.mjs'
import { BigQuery, galVersion, googleAuthLibrary as gal, stackPaths } from './stack.mjs'
import { FETCHER_CODES, QUERY, assertSignedAs, assertSupplierError, here, impersonationUrl, inWorkers, pollUntil, rejection, runNode, signedUrlV4, supplierAwsClient } from './support.mjs'

makeProcessHermetic()
const { GoogleTokenFetcher } = createRequire(import.meta.url)('../index.js')

const TEST_TIMEOUT = { timeout: 30_000 }
const SA = DEFAULT_CONFIG.serviceAccount
const AWS_VARS = ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_REGION']
const GAL_MAJOR = Number(galVersion.split('.')[0])
if (process.env.WIF_TEST_EXPECT_GAL_MAJOR) assert.equal(GAL_MAJOR, Number(process.env.WIF_TEST_EXPECT_GAL_MAJOR))

let em
let seq = 0

before(async () => {
  em = await startEmulator()
})
beforeEach(() => {
  em.reset()
  em.config = { ...DEFAULT_CONFIG }
})
afterEach(() => {
  for (const key of AWS_VARS) delete process.env[key]
})
after(async () => {
  await em?.close()
})

/** An environment no other test used: cold AWS credential and token caches. */
function freshEnv() {
  Object.assign(process.env, { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v2/credentials/authclient-${process.pid}-${++seq}`, AWS_REGION: 'us-east-1' })
}

function options({ impersonate = true, ...extra } = {}) {
  return { audience: DEFAULT_CONFIG.audience, tokenUrl: `${em.url}/v1/token`, ...(impersonate ? { serviceAccountImpersonationUrl: impersonationUrl(em.url, SA) } : {}), ...extra }
}

/** A fresh fetcher and its authClient() on the stack's google-auth-library. */
function setup(extra, clientOptions) {
  freshEnv()
  const fetcher = new GoogleTokenFetcher(options(extra))
  return { fetcher, authClient: fetcher.authClient({ googleAuthLibrary: gal, ...clientOptions }) }
}

const bigQuery = (authClient) => new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: em.url })
const queriesUrl = () => `${em.url}/bigquery/v2/projects/my-project/queries`
const rawQuery = (authClient, extra = {}) => authClient.request({ url: queriesUrl(), method: 'POST', data: { query: QUERY }, ...extra })
const only = (route) => em.requests.filter((r) => r.route === route)
const bearer = (request) => /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]
const exchanges = () => [em.count('sts'), em.count('iam')]
const assertFetcherError = (err, code) => assertSupplierError(err, code, { codes: FETCHER_CODES })

/** Revoke a Google access token at the emulator: its APIs answer 401 UNAUTHENTICATED from now on. */
const revoke = (token) => assert.ok(em.googleTokens.delete(token), 'not a token the emulator issued')

// ---------------------------------------------------------------------------------------------

describe(`authClient() on google-auth-library ${galVersion}`, () => {
  test("an instance of the application's google-auth-library client; headers, token, quota project and universe from the fetcher", TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup({ quotaProjectId: 'billing-project' })
    assert.ok(authClient instanceof gal.AuthClient)
    assert.ok(authClient instanceof gal.BaseExternalAccountClient)
    assert.equal(authClient.universeDomain, 'googleapis.com')
    assert.equal(authClient.quotaProjectId, 'billing-project')
    const headers = await authClient.getRequestHeaders()
    assert.ok(headers instanceof Headers, `google-auth-library ${galVersion} returns a Headers object`)
    const { token } = await fetcher.getAccessToken()
    assert.deepEqual([...headers.entries()].sort(), [['authorization', `Bearer ${token}`], ['x-goog-user-project', 'billing-project']])
    assert.deepEqual(await authClient.getAccessToken(), { token, res: null })
    headers.set('authorization', 'changed by the caller')
    const again = await authClient.getRequestHeaders()
    assert.notEqual(again, headers, 'a new Headers object every time')
    assert.equal(again.get('authorization'), `Bearer ${token}`)
    authClient.quotaProjectId = 'another-project'
    assert.equal((await authClient.getRequestHeaders()).get('x-goog-user-project'), 'another-project')
    authClient.quotaProjectId = 'billing-project'
    assert.equal(em.googleTokens.get(token).kind, 'sa')
    assert.deepEqual(exchanges(), [1, 1], 'the fetcher and its client share one cache')
    for (const text of [inspect(authClient), inspect(authClient, { showHidden: true, depth: 10 }), JSON.stringify(authClient), inspect(Object.values(authClient), { depth: 4 })]) {
      assert.ok(!text.includes(token), `the token shows in ${text}`)
    }
    assert.equal(new GoogleTokenFetcher(options({ universeDomain: 'universe.example.test' })).authClient({ googleAuthLibrary: gal }).universeDomain, 'universe.example.test')
  })

  test('BigQuery through authClient(): the row names the service account; one exchange', TEST_TIMEOUT, async () => {
    const { authClient } = setup()
    const [rows] = await bigQuery(authClient).query({ query: QUERY, location: 'US' })
    assert.deepEqual(rows.map((r) => r.principal), [SA])
    assert.deepEqual(exchanges(), [1, 1])
    assert.equal(em.googleTokens.get(bearer(only('bigquery')[0])).kind, 'sa')
  })

  test('new GoogleAuth({ authClient }): getCredentials() names the service account, getAccessToken() is ours', TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup()
    const auth = new gal.GoogleAuth({ authClient })
    assert.deepEqual(await auth.getCredentials(), { client_email: SA, universe_domain: 'googleapis.com' })
    assert.equal(await auth.getAccessToken(), (await fetcher.getAccessToken()).token)
  })

  test("GoogleAuth.sign() through IAM Credentials signBlob, with the service account's own token (as with AwsClient)", TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup()
    const auth = new gal.GoogleAuth({ authClient })
    const signed = await auth.sign('string to sign', `${em.url}/v1/projects/-/serviceAccounts/`)
    assert.equal(signed, emulatorSignature(em, Buffer.from('string to sign')))
    const [request] = only('iamSignBlob')
    assert.equal(request.path, `/v1/projects/-/serviceAccounts/${SA}:signBlob`)
    assert.equal(bearer(request), (await fetcher.getAccessToken()).token)
    assert.equal(request.signedBy, 'sa')
  })

  // @google-cloud/storage 8 needs google-auth-library 11: it is in the Node 22 stack only.
  const storageModule = (() => {
    if (!process.env.WIF_TEST_DEPS_DIR) return null
    try {
      return createRequire(join(process.env.WIF_TEST_DEPS_DIR, '..', 'package.json'))('@google-cloud/storage')
    } catch {
      return null
    }
  })()
  test("@google-cloud/storage getSignedUrl() (v4) through authClient(): signed by signBlob as the service account", { ...TEST_TIMEOUT, skip: !storageModule && '@google-cloud/storage 8 is installed in the Node 22 / google-auth-library 11 stack (__test__/gal11) only' }, async () => {
    const { fetcher, authClient } = setup()
    const storage = new storageModule.Storage({ projectId: 'my-project', authClient, apiEndpoint: em.url })
    // Safety net: should anything in Storage or google-auth-library ignore signingEndpoint, gaxios
    // sends it to a dead proxy on loopback instead of resolving a Google host name.
    const saved = { HTTPS_PROXY: process.env.HTTPS_PROXY, NO_PROXY: process.env.NO_PROXY }
    Object.assign(process.env, { HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1,localhost' })
    let url
    try {
      url = await signedUrlV4(storage, em)
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    assertSignedAs(em, url, { serviceAccount: SA, token: (await fetcher.getAccessToken()).token })
  })

  test('raw authClient.request({ url }), promise and callback', TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup({ quotaProjectId: 'qp' })
    const res = await rawQuery(authClient)
    assert.equal(res.status, 200)
    assert.equal(res.data.rows[0].f[1].v, SA)
    const [request] = only('bigquery')
    assert.equal(bearer(request), (await fetcher.getAccessToken()).token)
    assert.equal(request.headers['x-goog-user-project'], 'qp')
    const viaCallback = await new Promise((resolve, reject) => authClient.request({ url: queriesUrl(), method: 'POST', data: { query: QUERY } }, (err, r) => (err ? reject(err) : resolve(r))))
    assert.equal(viaCallback.status, 200)
  })

  test('a 401 drops the rejected token and retries once with a fresh one', TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup()
    const first = (await rawQuery(authClient), bearer(only('bigquery')[0]))
    revoke(first)
    const res = await rawQuery(authClient)
    assert.equal(res.status, 200)
    const [, rejected, retried] = only('bigquery')
    assert.deepEqual([rejected.status, retried.status], [401, 200])
    assert.equal(bearer(rejected), first)
    assert.notEqual(bearer(retried), first)
    assert.equal((await fetcher.getAccessToken()).token, bearer(retried), 'the fresh token is the cached one now')
    assert.deepEqual(exchanges(), [1, 2], 'one fresh generateAccessToken, on the still-valid federated token')
  })

  test('ten 401s in a row from a URL that always refuses: one forced refresh in all, the rest get the 401 back', TEST_TIMEOUT, async () => {
    const { authClient } = setup()
    await rawQuery(authClient)
    em.setAlways('bigquery', { status: 401 })
    for (let i = 0; i < 10; i++) assert.equal((await rejection(rawQuery(authClient))).response?.status, 401)
    assert.deepEqual(exchanges(), [1, 2], 'the first token, and one forced refresh (no new STS exchange)')
    assert.equal(em.count('bigquery'), 1 + 10 + 1, 'one retry in all')
  })

  test('ten 401s in each of 8 worker_threads: at most 2 STS and 2 IAM calls in all', { timeout: 60_000 }, async () => {
    freshEnv()
    em.setAlways('bigquery', { status: 401 })
    const body = `
      const { GoogleTokenFetcher } = require(workerData.index)
      const authClient = new GoogleTokenFetcher(workerData.options).authClient({ googleAuthLibrary: require(workerData.gal) })
      return async () => {
        const statuses = []
        for (let i = 0; i < 10; i++) {
          try { await authClient.request({ url: workerData.queries, method: 'POST', data: {} }); statuses.push(200) } catch (e) { statuses.push(e.response?.status) }
        }
        return statuses
      }
    `
    const results = await inWorkers(8, body, { index: here('../index.js'), gal: stackPaths.googleAuthLibrary, options: options(), queries: queriesUrl() })
    assert.deepEqual(results, Array(8).fill(Array(10).fill(401)))
    const [sts, iam] = exchanges()
    assert.ok(sts <= 2 && iam <= 2, `${sts} STS and ${iam} IAM calls`)
    // A worker whose rejected token another worker already replaced retries once with the new one;
    // after that first round every 401 is returned as it is.
    assert.ok(em.count('bigquery') <= 80 + 8, `${em.count('bigquery')} requests: at most one retry per worker`)
  })

  test("a new token is announced as google-auth-library's AwsClient does: a 'tokens' event and credentials, never enumerable", TEST_TIMEOUT, async () => {
    // The oracle: the event google-auth-library's own AwsClient emits for a token it fetched.
    const { ContainerAwsCredentialsSupplier } = createRequire(import.meta.url)('../index.js')
    freshEnv()
    const galClient = supplierAwsClient(gal, { baseUrl: em.url, audience: DEFAULT_CONFIG.audience, serviceAccount: SA, supplier: new ContainerAwsCredentialsSupplier() })
    const galEvents = []
    galClient.on('tokens', (t) => galEvents.push(t))
    await galClient.getAccessToken()
    assert.equal(galEvents.length, 1)

    const { fetcher, authClient } = setup()
    const events = []
    authClient.on('tokens', (t) => events.push(t))
    await authClient.getRequestHeaders()
    await authClient.getRequestHeaders()
    await rawQuery(authClient)
    const first = await fetcher.getAccessToken()
    assert.deepEqual(events, [{ refresh_token: null, expiry_date: first.expiresAt, access_token: first.token, token_type: 'Bearer', id_token: null }], 'once per token')
    assert.deepEqual(Object.keys(events[0]).sort(), Object.keys(galEvents[0]).sort(), "the fields of google-auth-library's event")
    assert.equal(authClient.credentials.access_token, first.token)
    assert.equal(authClient.credentials.expiry_date, first.expiresAt)

    revoke(first.token)
    assert.equal((await rawQuery(authClient)).status, 200)
    const second = await fetcher.getAccessToken()
    assert.notEqual(second.token, first.token)
    assert.deepEqual(events.map((e) => e.access_token), [first.token, second.token], 'the fresh token of the 401 retry is announced')
    assert.equal(authClient.credentials.access_token, second.token)
    assert.ok(!Object.keys(authClient).includes('credentials'))
    for (const text of [inspect(authClient, { showHidden: true, depth: 10 }), JSON.stringify(authClient), inspect(Object.values(authClient), { depth: 4 }), JSON.stringify({ ...authClient })]) {
      assert.ok(!text.includes(second.token), `the token shows in ${text}`)
    }
  })

  test('two requests rejected with the same token: one fresh exchange, not two', TEST_TIMEOUT, async () => {
    const { authClient } = setup()
    await rawQuery(authClient)
    revoke(bearer(only('bigquery')[0]))
    const results = await Promise.all([rawQuery(authClient), rawQuery(authClient)])
    assert.deepEqual(results.map((r) => r.status), [200, 200])
    assert.deepEqual(exchanges(), [1, 2])
  })

  test('a second 401 is returned, not retried again; a streamed body is never retried', TEST_TIMEOUT, async () => {
    const { authClient } = setup()
    await rawQuery(authClient)
    em.setAlways('bigquery', { status: 401 })
    const err = await rejection(rawQuery(authClient))
    assert.equal(err.response?.status, 401)
    assert.equal(em.count('bigquery'), 3, 'one request and one retry')
    const streamed = await rejection(rawQuery(authClient, { data: Readable.from([JSON.stringify({ query: QUERY })]), headers: { 'content-type': 'application/json' } }))
    assert.equal(streamed.response?.status, 401)
    assert.equal(em.count('bigquery'), 4, 'the streamed request is sent once')
  })

  test('8 worker_threads, each with its own BigQuery client on authClient(): 1 STS and 1 IAM exchange in all', { timeout: 60_000 }, async () => {
    freshEnv()
    em.fault('sts', { delayMs: 200 }) // the first exchange is still in flight when the other workers ask
    const body = `
      const { GoogleTokenFetcher } = require(workerData.index)
      const { BigQuery } = require(workerData.bigquery)
      const authClient = new GoogleTokenFetcher(workerData.options).authClient({ googleAuthLibrary: require(workerData.gal) })
      const bigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: workerData.url })
      return async () => (await bigquery.query({ query: workerData.query, location: 'US' }))[0][0].principal
    `
    const results = await inWorkers(8, body, { index: here('../index.js'), bigquery: stackPaths.bigquery, gal: stackPaths.googleAuthLibrary, options: options(), url: em.url, query: QUERY })
    assert.deepEqual(results, Array(8).fill(SA))
    assert.equal(em.count('bigquery'), 8)
    assert.deepEqual(exchanges(), [1, 1])
    assert.equal(em.count('container'), 1)
  })

  test('4 worker_threads, each calling its own Cloud Run service and BigQuery: 1 STS exchange in all', { timeout: 60_000 }, async () => {
    freshEnv()
    em.fault('sts', { delayMs: 200 }) // the first exchange is still in flight when the other workers ask
    const body = `
      const { GoogleTokenFetcher } = require(workerData.index)
      const { BigQuery } = require(workerData.bigquery)
      const { threadId } = require('node:worker_threads')
      const fetcher = new GoogleTokenFetcher(workerData.options)
      const gal = require(workerData.gal)
      const bigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient: fetcher.authClient({ googleAuthLibrary: gal }), apiEndpoint: workerData.url })
      const service = workerData.url + '/run/worker-' + threadId
      const run = fetcher.idTokenClient(service, { googleAuthLibrary: gal })
      return async () => {
        const [[rows], res] = await Promise.all([bigquery.query({ query: workerData.query, location: 'US' }), run.request({ url: service })])
        return [rows[0].principal, res.status]
      }
    `
    const results = await inWorkers(4, body, { index: here('../index.js'), bigquery: stackPaths.bigquery, gal: stackPaths.googleAuthLibrary, options: options(), url: em.url, query: QUERY })
    assert.deepEqual(results, Array(4).fill([SA, 200]))
    assert.deepEqual([em.count('sts'), em.count('iam'), em.count('iamIdToken'), em.count('cloudRun')], [1, 1, 4, 4], 'one federated token for the access token and four ID tokens')
    assert.equal(em.count('container'), 1)
  })

  // A 600 s token with a 599 s margin and no jitter is due for refresh 1 s after it was issued.
  const windowOptions = { serviceAccountImpersonation: { tokenLifetimeSeconds: 600 }, refreshMarginSeconds: 599, refreshJitterSeconds: 0 }

  /** Wait (bounded) until the fetcher's token is inside its refresh window. */
  async function intoTheWindow(fetcher) {
    const { expiresAt } = await fetcher.getAccessToken()
    await pollUntil(() => Date.now() > expiresAt - 599_000 + 20, { timeoutMs: 5000, intervalMs: 20, what: 'the refresh window' })
  }

  test('inside the refresh window, 100 requests complete while the delayed STS answer is still pending', TEST_TIMEOUT, async () => {
    // The federated token is due too, so that the refresh goes through STS (else it needs only IAM);
    // an expireTime in whole seconds would make the access token due up to 1 s before it.
    em.config = { ...em.config, stsTokenTtlSeconds: 600, expireTimeMillis: true }
    const { fetcher, authClient } = setup(windowOptions)
    await rawQuery(authClient)
    const first = bearer(only('bigquery')[0])
    await intoTheWindow(fetcher)
    em.fault('sts', { delayMs: 500 })
    const results = await Promise.all(Array.from({ length: 100 }, () => rawQuery(authClient)))
    assert.deepEqual(new Set(results.map((r) => r.status)), new Set([200]))
    const refresh = only('sts')[1]
    assert.ok(refresh, `a refresh started: ${JSON.stringify(em.requests.map((r) => [r.route, r.status]))}`)
    assert.equal(refresh.status, undefined, 'all 100 requests completed before STS answered')
    assert.ok(only('bigquery').slice(1).every((r) => bearer(r) === first), 'all with the still-valid token')
    await pollUntil(async () => (await authClient.getAccessToken()).token !== first, { what: 'the refreshed token' })
    assert.deepEqual(exchanges(), [2, 2], 'one refresh behind 100 requests')
  })

  test('a failed background refresh keeps serving the valid token; the next one succeeds', TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup(windowOptions)
    const first = (await authClient.getAccessToken()).token
    await intoTheWindow(fetcher)
    em.setAlways('iam', { status: 500 })
    await pollUntil(
      async () => {
        assert.equal((await rawQuery(authClient)).status, 200)
        assert.equal(bearer(only('bigquery').at(-1)), first)
        return em.count('iam') >= 4 // the first and three failed attempts of the refresh
      },
      { what: 'a failed refresh' },
    )
    assert.ok(only('iam').slice(1).every((r) => r.status === 500))
    em.setAlways('iam', null)
    await pollUntil(async () => (await authClient.getAccessToken()).token !== first, { what: 'recovery after the backoff' })
  })

  test('authClient() without impersonation: the STS token; getCredentials cannot name a service account', TEST_TIMEOUT, async () => {
    const { authClient } = setup({ impersonate: false })
    const [rows] = await bigQuery(authClient).query({ query: QUERY, location: 'US' })
    assert.match(rows[0].principal, /^principal:\/\/iam\.googleapis\.com\//)
    assert.equal(authClient.getServiceAccountEmail(), null)
  })
})

// ---------------------------------------------------------------------------------------------

describe('invalidate()', () => {
  test("drops the configuration's tokens: native cache, this thread's memos, every object of the configuration", TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup()
    const twin = new GoogleTokenFetcher(options())
    const audience = `${em.url}/run/svc`
    const access = await fetcher.getAccessToken()
    const id = await twin.getIdToken(audience)
    assert.equal((await authClient.getAccessToken()).token, access.token)
    assert.deepEqual([...exchanges(), em.count('iamIdToken')], [1, 1, 1], 'the access and the ID token on one federated token')
    twin.invalidate()
    const fresh = await fetcher.getAccessToken()
    assert.notEqual(fresh.token, access.token, 'the memo of another object of the configuration was dropped too')
    assert.equal((await authClient.getAccessToken()).token, fresh.token)
    assert.notEqual((await fetcher.getIdToken(audience)).token, id.token)
    assert.deepEqual([...exchanges(), em.count('iamIdToken')], [2, 2, 2], 'the federated token was dropped too')
  })
})

// ---------------------------------------------------------------------------------------------

describe('ID tokens', () => {
  const runUrl = (service) => `${em.url}/run/${service}`

  test('getIdToken: a JWT from generateIdToken with aud, exp and (when asked) email; cached per audience and includeEmail', TEST_TIMEOUT, async () => {
    freshEnv()
    const fetcher = new GoogleTokenFetcher(options())
    const before = Date.now()
    const plain = await fetcher.getIdToken(runUrl('a'))
    assert.deepEqual(Object.keys(plain).sort(), ['expiresAt', 'token'])
    const claims = verifyJwt(em.idTokenKey, plain.token)
    assert.equal(claims.aud, runUrl('a'))
    assert.equal(claims.email, undefined)
    assert.equal(plain.expiresAt, claims.exp * 1000)
    assert.ok(plain.expiresAt >= before + 3_598_000, `expiresAt ${plain.expiresAt}`)
    const [request] = only('iamIdToken')
    assert.equal(request.path, `/v1/projects/-/serviceAccounts/${SA}:generateIdToken`)
    assert.equal(request.body, JSON.stringify({ audience: runUrl('a'), includeEmail: false }))
    assert.equal(em.googleTokens.get(bearer(request)).kind, 'sts', 'the federated token is the bearer')

    assert.deepEqual(await fetcher.getIdToken(runUrl('a')), plain, 'cached')
    assert.deepEqual(await new GoogleTokenFetcher(options()).getIdToken(runUrl('a'), { includeEmail: false }), plain, 'process-wide')
    const withEmail = await fetcher.getIdToken(runUrl('a'), { includeEmail: true })
    assert.equal(verifyJwt(em.idTokenKey, withEmail.token).email, SA)
    await fetcher.getIdToken(runUrl('b'))
    assert.equal(em.count('iamIdToken'), 3)
    assert.equal(em.count('sts'), 1, 'every ID token of the configuration on one federated token')
  })

  test('access and ID tokens of one configuration share one STS exchange: BigQuery and a Cloud Run call', TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup()
    const [[rows], res] = await Promise.all([
      bigQuery(authClient).query({ query: QUERY, location: 'US' }),
      fetcher.idTokenClient(runUrl('a'), { googleAuthLibrary: gal }).request({ url: runUrl('a') }),
    ])
    assert.deepEqual(rows.map((r) => r.principal), [SA])
    assert.equal(res.status, 200)
    assert.deepEqual([em.count('sts'), em.count('iam'), em.count('iamIdToken')], [1, 1, 1])
    const bearers = [...only('iam'), ...only('iamIdToken')].map(bearer)
    assert.equal(new Set(bearers).size, 1, 'both IAM calls carried the same federated token')
    // IAM rejecting that federated token: it is dropped, and the next ID token exchanges afresh.
    em.fault('iamIdToken', { status: 401 })
    assertFetcherError(await rejection(fetcher.getIdToken(runUrl('b'))), 'IMPERSONATION_FAILED')
    await fetcher.getIdToken(runUrl('b'))
    assert.equal(em.count('sts'), 2)
  })

  test('without serviceAccountImpersonationUrl: CONFIG_INVALID with a hint; a non-string audience too', TEST_TIMEOUT, async () => {
    freshEnv()
    const err = assertFetcherError(await rejection(new GoogleTokenFetcher(options({ impersonate: false })).getIdToken(runUrl('a'))), 'CONFIG_INVALID')
    assert.match(err.message, /ID tokens need a service account/)
    assert.match(err.hint, /serviceAccountImpersonationUrl/)
    const fetcher = new GoogleTokenFetcher(options())
    assertFetcherError(await rejection(fetcher.getIdToken(42)), 'CONFIG_INVALID')
    assertFetcherError(await rejection(fetcher.getIdToken('')), 'CONFIG_INVALID')
    assert.throws(() => fetcher.idTokenClient(''), (e) => assertFetcherError(e, 'CONFIG_INVALID') && true)
    assert.equal(em.requests.length, 0)
  })

  test('IAM refusing generateIdToken: IMPERSONATION_FAILED with a hint, and no token in the error', TEST_TIMEOUT, async () => {
    freshEnv()
    em.config.serviceAccount = 'someone-else@my-project.iam.gserviceaccount.com'
    const err = assertFetcherError(await rejection(new GoogleTokenFetcher(options()).getIdToken(runUrl('a'))), 'IMPERSONATION_FAILED')
    assert.equal(err.status, 403)
    assert.match(err.hint, /roles\/iam\.workloadIdentityUser/)
    const text = `${err.message} ${err.stack} ${inspect(err)} ${JSON.stringify(err)}`
    for (const token of em.googleTokens.keys()) assert.ok(!text.includes(token))
  })

  test('idTokenClient(url).request() calls the Cloud Run stand-in; it refuses an access token or another audience', TEST_TIMEOUT, async () => {
    const { fetcher, authClient } = setup()
    const client = fetcher.idTokenClient(runUrl('hello'), { googleAuthLibrary: gal })
    assert.ok(client instanceof gal.AuthClient)
    const res = await client.request({ url: `${runUrl('hello')}/greet` })
    assert.equal(res.status, 200)
    assert.deepEqual(res.data, { service: 'hello', aud: runUrl('hello'), email: null, method: 'GET', path: '/run/hello/greet' })
    assert.equal((await client.getRequestHeaders()).get('authorization'), `Bearer ${(await fetcher.getIdToken(runUrl('hello'))).token}`)
    // The negative controls: the stand-in really checks the token and its audience.
    assert.equal((await rejection(authClient.request({ url: runUrl('hello') }))).response?.status, 401)
    assert.equal((await rejection(client.request({ url: runUrl('other') }))).response?.status, 401)
    assert.deepEqual(only('cloudRun').map((r) => r.status), [200, 401, 401, 401, 401], 'each refused request was retried once with a fresh token')
  })

  test('a 401 from the service drops that ID token and retries once with a fresh one', TEST_TIMEOUT, async () => {
    const { fetcher } = setup()
    const client = fetcher.idTokenClient(runUrl('svc'), { googleAuthLibrary: gal, includeEmail: true })
    await client.request({ url: runUrl('svc') })
    const first = bearer(only('cloudRun')[0])
    em.revokedIdTokens.add(first)
    const res = await client.request({ url: runUrl('svc'), method: 'POST', data: { a: 1 } })
    assert.equal(res.status, 200)
    assert.equal(res.data.email, SA)
    assert.deepEqual(only('cloudRun').map((r) => r.status), [200, 401, 200])
    assert.notEqual(bearer(only('cloudRun')[2]), first)
    assert.equal(em.count('iamIdToken'), 2)
  })
})

// ---------------------------------------------------------------------------------------------

describe("google-auth-library resolution: the application's, not this package's", () => {
  const GAL11 = here('gal11/node_modules')
  // Installed there, at major 11: not what resolution from __test__/gal11 finds, which walks up to
  // this repository's own node_modules (google-auth-library 10) when __test__/gal11 was never installed.
  const gal11Installed = (() => {
    try {
      return JSON.parse(readFileSync(join(GAL11, 'google-auth-library', 'package.json'), 'utf8')).version.startsWith('11.')
    } catch {
      return false
    }
  })()

  /** Run `file` (written with `source`) as the main script, with `cwd` (default: its folder); its last JSON line. */
  async function runMain(file, source, cwd = dirname(file)) {
    writeFileSync(file, source)
    const run = await runNode(file, { env: hermeticEnv({ NODE_NO_WARNINGS: '1', NODE_PATH: undefined }), cwd })
    assert.equal(run.code, 0, run.stderr)
    return run.result
  }

  /** Run `source` as the main script of a fresh app folder whose node_modules is `nodeModules` (or none). */
  async function inApp(source, nodeModules) {
    const dir = mkdtempSync(join(tmpdir(), 'aws-wif-app-'))
    try {
      if (nodeModules) symlinkSync(nodeModules, join(dir, 'node_modules'), 'dir')
      return await runMain(join(dir, 'main.cjs'), source)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  /**
   * A stand-in google-auth-library `version` in `dir`/node_modules: `modern` has what authClient()
   * needs (google-auth-library 10's shape); loading it sets globalThis.standInLoaded to `version`.
   */
  function plantGal(dir, version, { modern = true } = {}) {
    const gal = join(dir, 'node_modules', 'google-auth-library')
    mkdirSync(gal, { recursive: true })
    writeFileSync(join(gal, 'package.json'), JSON.stringify({ name: 'google-auth-library', version, main: 'index.js' }))
    writeFileSync(join(gal, 'index.js'), `
      globalThis.standInLoaded = ${JSON.stringify(version)}
      class AuthClient extends require('node:events').EventEmitter {${modern ? ' addUserProjectAndAuthHeaders() {}' : ''} }
      class BaseExternalAccountClient extends AuthClient {}
      module.exports = { AuthClient, BaseExternalAccountClient, gaxios: { Gaxios: { mergeHeaders: (h) => new Headers(h) } } }
    `)
  }

  /** A copy of this package's JavaScript in `dir` (the binary linked), so that its own folder is `dir`, not the checkout. */
  function copyPackage(dir) {
    mkdirSync(dir, { recursive: true })
    for (const file of ['package.json', 'index.js', 'index.mjs', 'binding.js']) copyFileSync(here(`../${file}`), join(dir, file))
    cpSync(here('../lib'), join(dir, 'lib'), { recursive: true })
    symlinkSync(addonPath(), join(dir, basename(addonPath())))
  }

  /** What authClient() gave the main script: the app's AuthClient or not, which stand-in ran, or the error. */
  const report = `
    let out
    try {
      const client = fetcher.authClient()
      const appGal = require('google-auth-library')
      out = { isApps: client instanceof appGal.AuthClient, appGal: require('google-auth-library/package.json').version }
    } catch (e) {
      out = { code: e.code, message: e.message, hint: e.hint }
    }
    console.log(JSON.stringify({ ...out, standInLoaded: globalThis.standInLoaded ?? null }))
  `
  const fetcherOf = (pkg) => `new (${pkg}.GoogleTokenFetcher)({ audience: ${JSON.stringify(DEFAULT_CONFIG.audience)} })`
  const cjsMain = (specifier) => `const fetcher = ${fetcherOf(`require(${JSON.stringify(specifier)})`)}\n${report}`
  const esmMain = (specifier) => `import * as pkg from ${JSON.stringify(specifier)}\nimport { createRequire } from 'node:module'\nconst require = createRequire(import.meta.url)\nconst fetcher = ${fetcherOf('pkg')}\n${report}`

  test('the working directory is never searched: a google-auth-library planted there does not run (CommonJS and ESM)', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-wif-cwd-'))
    try {
      mkdirSync(join(dir, 'app'))
      plantGal(join(dir, 'cwd'), '10.99.0-planted')
      for (const [file, source] of [['main.cjs', cjsMain(here('../index.js'))], ['main.mjs', esmMain(pathToFileURL(here('../index.mjs')).href)]]) {
        const result = await runMain(join(dir, 'app', file), source, join(dir, 'cwd'))
        assert.equal(result.standInLoaded, null, `${file}: the planted google-auth-library ran`)
        assert.equal(result.code, 'CONFIG_INVALID', `${file}: ${JSON.stringify(result)}`)
        assert.match(result.hint, /googleAuthLibrary: require\('google-auth-library'\)/)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("npm workspaces: the package's own folder has another google-auth-library; CommonJS and ESM both extend the app's", { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-wif-workspace-'))
    try {
      // dir/packages/aws-wif-supplier (with its own google-auth-library) linked from the app's node_modules.
      const pkg = join(dir, 'packages', 'aws-wif-supplier')
      copyPackage(pkg)
      plantGal(pkg, '10.99.0-package-own')
      const app = join(dir, 'app')
      mkdirSync(join(app, 'node_modules'), { recursive: true })
      symlinkSync(pkg, join(app, 'node_modules', 'aws-wif-supplier'), 'dir')
      const galEntry = stackPaths.googleAuthLibrary
      const galRoot = galEntry.slice(0, galEntry.lastIndexOf(`${sep}google-auth-library${sep}`) + `${sep}google-auth-library`.length)
      symlinkSync(galRoot, join(app, 'node_modules', 'google-auth-library'), 'dir')
      for (const [file, source] of [['main.cjs', cjsMain('aws-wif-supplier')], ['main.mjs', esmMain('aws-wif-supplier')]]) {
        const result = await runMain(join(app, file), source)
        assert.deepEqual(result, { isApps: true, appGal: galVersion, standInLoaded: null }, file)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('google-auth-library older than 10 in the application: CONFIG_INVALID naming the version found and the way out', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-wif-gal9-'))
    try {
      plantGal(dir, '9.15.1', { modern: false })
      const result = await runMain(join(dir, 'main.cjs'), cjsMain(here('../index.js')))
      assert.equal(result.code, 'CONFIG_INVALID', JSON.stringify(result))
      assert.match(result.message, /need google-auth-library 10 or later; the application's is 9\.15\.1/)
      assert.match(result.hint, /upgrade google-auth-library to 10 or later, or use ContainerAwsCredentialsSupplier/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  const probe = () => `
    const { GoogleTokenFetcher } = require(${JSON.stringify(here('../index.js'))})
    const fetcher = new GoogleTokenFetcher({ audience: ${JSON.stringify(DEFAULT_CONFIG.audience)} })
    let out
    try {
      const client = fetcher.authClient()
      const appGal = require('google-auth-library')
      out = { appGal: require('google-auth-library/package.json').version, isApps: client instanceof appGal.AuthClient }
    } catch (e) {
      out = { code: e.code, message: e.message }
    }
    console.log(JSON.stringify(out))
  `

  test("authClient() extends the application's google-auth-library (11 here), not this package's devDependency", { timeout: 30_000, skip: !gal11Installed && 'needs google-auth-library 11 in __test__/gal11/node_modules (npm ci --prefix __test__/gal11)' }, async () => {
    const result = await inApp(probe(), GAL11)
    assert.match(result.appGal, /^11\./)
    assert.equal(result.isApps, true)
  })

  test('an application without google-auth-library: CONFIG_INVALID naming the way out', { timeout: 30_000 }, async () => {
    const result = await inApp(`
      const { GoogleTokenFetcher } = require(${JSON.stringify(here('../index.js'))})
      const fetcher = new GoogleTokenFetcher({ audience: ${JSON.stringify(DEFAULT_CONFIG.audience)} })
      try { fetcher.authClient(); console.log('{}') } catch (e) { console.log(JSON.stringify({ code: e.code, hint: e.hint })) }
    `)
    assert.equal(result.code, 'CONFIG_INVALID')
    assert.match(result.hint, /googleAuthLibrary: require\('google-auth-library'\)/)
  })
})
