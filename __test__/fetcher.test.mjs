// GoogleTokenFetcher end to end against the loopback emulator (issue #3): a token with and without
// impersonation, from options, from the gcloud credential configuration (file and parsed object)
// and from GOOGLE_APPLICATION_CREDENTIALS; the token cache (reuse, single flight, failures not
// cached, the JavaScript fast path across a refresh and a failed refresh, worker_threads); the error
// codes users branch on; no secret in any error; and a differential run against google-auth-library's
// own AwsClient (byte-identical subject tokens).
//
// The tests run in this (hermetic) process. The fetcher snapshots the environment when it is
// constructed, and both its AWS credentials and its tokens are cached process-wide per configuration
// (environment included), so every test points AWS_CONTAINER_CREDENTIALS_FULL_URI at a path of its own
// (/v2/credentials/fetcher-<pid>-<n>): a distinct environment, hence cold caches. The differential
// run needs a frozen JavaScript clock and runs in a child (fixtures/differential.mjs).
//
// Run: node --test __test__/fetcher.test.mjs

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, test } from 'node:test'
import { inspect } from 'node:util'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { leakedMarkers, makeMarkers } from './secret-scenarios.mjs'
import {
  AWS4_REQUEST,
  CLOUD_PLATFORM,
  FETCHER_CODES,
  assertSupplierError,
  gcloudCredConfig,
  here,
  impersonationUrl,
  inWorkers,
  pollUntil,
  rejection,
  runNode,
  subjectTokenRegion,
} from './support.mjs'

makeProcessHermetic()
const { GoogleTokenFetcher } = createRequire(import.meta.url)('../index.js')

const TEST_TIMEOUT = { timeout: 30_000 }
const SLACK_MS = 2000
const AUDIENCE = DEFAULT_CONFIG.audience
const SA = DEFAULT_CONFIG.serviceAccount
const BIGQUERY = 'https://www.googleapis.com/auth/bigquery'
const STORAGE_RO = 'https://www.googleapis.com/auth/devstorage.read_only'
const REGION = 'us-east-2'
const AWS_VARS = ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_REGION', 'GOOGLE_APPLICATION_CREDENTIALS', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']

const m = makeMarkers(randomBytes(6).toString('hex'))
/** The container endpoint hands out these (marker) credentials every time. */
const CREDENTIALS = Object.freeze({ accessKeyId: 'ASIAFETCHERTEST00001', secretAccessKey: m.secretKey, token: m.sessionToken })
const FETCHER_MARKERS = { secretKey: m.secretKey, sessionToken: m.sessionToken, envSecret: m.envSecret }

let em
let dir
let seq = 0

before(async () => {
  em = await startEmulator()
  dir = mkdtempSync(join(tmpdir(), 'aws-wif-fetcher-'))
})
beforeEach(() => {
  em.reset()
  em.config = { ...DEFAULT_CONFIG, credentials: CREDENTIALS }
})
afterEach(() => {
  for (const key of AWS_VARS) delete process.env[key]
})
after(async () => {
  await em?.close()
  rmSync(dir, { recursive: true, force: true })
})

/**
 * Give the process an environment no other test used (a FULL_URI of its own on the emulator, and
 * AWS_REGION), plus `vars`. Construct fetchers after calling this: they snapshot the environment.
 */
function freshEnv(vars = {}) {
  for (const key of AWS_VARS) delete process.env[key]
  Object.assign(process.env, { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v2/credentials/fetcher-${process.pid}-${++seq}`, AWS_REGION: REGION }, vars)
  for (const [key, value] of Object.entries(vars)) if (value === undefined) delete process.env[key]
}

/** Options for `new GoogleTokenFetcher` against the emulator; `impersonate: false` leaves IAM out. */
function options({ impersonate = true, ...extra } = {}) {
  return { audience: AUDIENCE, tokenUrl: `${em.url}/v1/token`, ...(impersonate ? { serviceAccountImpersonationUrl: impersonationUrl(em.url, SA) } : {}), ...extra }
}

/** Write a file in the per-run temp directory; returns its path. */
function tempFile(name, content) {
  const path = join(dir, `${++seq}-${name}`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return path
}

const gcloudConfig = (overrides) => gcloudCredConfig(em.url, { audience: AUDIENCE, serviceAccount: SA, ...overrides })
const only = (route) => em.requests.filter((r) => r.route === route)
const form = (request) => Object.fromEntries(new URLSearchParams(request.body))

/** Assert a fetcher error: documented code, `retryable`, message; returns it. */
const assertFetcherError = (err, code) => assertSupplierError(err, code, { codes: FETCHER_CODES })

/** Every rendering of an error a logger might produce. */
function renderings(err) {
  return [err.message, err.stack, inspect(err), inspect(err, { showHidden: true, depth: 10 }), JSON.stringify(err), String(err), JSON.stringify(Object.getOwnPropertyNames(err).map((k) => String(err[k])))].join('\n')
}

/** No marker secret, session token or Google token the emulator issued appears in any rendering of `err`. */
function assertNoSecret(err) {
  const text = renderings(err)
  assert.deepEqual(leakedMarkers(text, FETCHER_MARKERS), [], `marker secret in: ${err.message}`)
  for (const token of em.googleTokens.keys()) assert.ok(!text.includes(token), `an issued Google token appears in: ${err.message}`)
  assert.ok(!text.includes('X-Amz-Signature') && !/Signature=[0-9a-f]{64}/.test(text), 'a SigV4 signature appears in the error')
}

/**
 * The one successful STS exchange of a flow: verdict ok from the independent SigV4 oracle, signed
 * in REGION with the container's key, and the standard token-exchange form. Returns its form.
 */
function assertOneGoodExchange({ scope }) {
  const sts = only('sts')
  assert.equal(sts.length, 1, 'one STS exchange')
  assert.equal(sts[0].status, 200)
  assert.equal(sts[0].verdict.ok, true, `${sts[0].verdict.reason}: ${sts[0].verdict.message}`)
  assert.equal(sts[0].verdict.accessKeyId, CREDENTIALS.accessKeyId)
  assert.equal(subjectTokenRegion(sts[0].body), REGION)
  assert.match(sts[0].headers['content-type'], /^application\/x-www-form-urlencoded/)
  const f = form(sts[0])
  assert.deepEqual(
    { ...f, subject_token: undefined },
    {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: AUDIENCE,
      scope,
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token_type: AWS4_REQUEST,
      subject_token: undefined,
    },
  )
  return f
}

/** The emulator's record of the Google token `token` (kind 'sts' or 'sa'). */
function issued(token) {
  const record = em.googleTokens.get(token)
  assert.ok(record, 'the token is not one the emulator issued')
  return record
}

// ---------------------------------------------------------------------------------------------

describe('from options', () => {
  test('with impersonation: the IAM token, STS scope cloud-platform, IAM body {scope, lifetime}', TEST_TIMEOUT, async () => {
    freshEnv()
    const fetcher = new GoogleTokenFetcher(options())
    const before = Date.now()
    const token = await fetcher.getAccessToken()
    assert.deepEqual(Object.keys(token).sort(), ['expiresAt', 'token'])
    assert.match(token.token, /^ya29\.sa\./)
    const record = issued(token.token)
    assert.equal(record.kind, 'sa')
    assert.equal(record.principal, SA)
    assert.deepEqual(record.scopes, [CLOUD_PLATFORM])
    // expireTime is whole seconds (RFC 3339); expiresAt is that instant.
    assert.equal(token.expiresAt, Math.floor(record.expiresAt / 1000) * 1000)
    assert.ok(token.expiresAt >= before + 3_599_000 - SLACK_MS && token.expiresAt <= Date.now() + 3_600_000, `expiresAt ${token.expiresAt}`)

    assertOneGoodExchange({ scope: CLOUD_PLATFORM })
    const [iam] = only('iam')
    assert.equal(only('iam').length, 1)
    assert.equal(iam.status, 200)
    assert.equal(iam.path, `/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`)
    assert.equal(iam.body, `{"scope":["${CLOUD_PLATFORM}"],"lifetime":"3600s"}`)
    assert.match(iam.headers['content-type'], /^application\/json/)
    const bearer = /^Bearer (.+)$/.exec(iam.headers.authorization)?.[1]
    assert.equal(issued(bearer).kind, 'sts', 'IAM is called with the STS token')
    assert.deepEqual(em.requests.map((r) => r.route), ['container', 'sts', 'iam'])
  })

  test('without impersonation: the STS token, with its expires_in', TEST_TIMEOUT, async () => {
    freshEnv()
    const fetcher = new GoogleTokenFetcher(options({ impersonate: false }))
    const before = Date.now()
    const token = await fetcher.getAccessToken()
    assert.match(token.token, /^ya29\.sts\./)
    const record = issued(token.token)
    assert.equal(record.kind, 'sts')
    assert.match(record.principal, /^principal:\/\/iam\.googleapis\.com\/projects\/123456\/locations\/global\/workloadIdentityPools\/pool\/subject\/arn:aws:sts::/)
    assert.ok(token.expiresAt >= before + 3_600_000 - SLACK_MS && token.expiresAt <= Date.now() + 3_600_000 + SLACK_MS, `expiresAt ${token.expiresAt}`)
    assertOneGoodExchange({ scope: CLOUD_PLATFORM })
    assert.equal(em.count('iam'), 0)
  })

  test('custom scopes go to IAM when impersonating (STS keeps cloud-platform)', TEST_TIMEOUT, async () => {
    freshEnv()
    const token = await new GoogleTokenFetcher(options({ scopes: [BIGQUERY, STORAGE_RO] })).getAccessToken()
    assertOneGoodExchange({ scope: CLOUD_PLATFORM })
    assert.deepEqual(JSON.parse(only('iam')[0].body), { scope: [BIGQUERY, STORAGE_RO], lifetime: '3600s' })
    assert.deepEqual(issued(token.token).scopes, [BIGQUERY, STORAGE_RO])
  })

  test('custom scopes go to STS (space-separated) without impersonation', TEST_TIMEOUT, async () => {
    freshEnv()
    const token = await new GoogleTokenFetcher(options({ impersonate: false, scopes: [BIGQUERY, STORAGE_RO] })).getAccessToken()
    assertOneGoodExchange({ scope: `${BIGQUERY} ${STORAGE_RO}` })
    assert.deepEqual(issued(token.token).scopes, [BIGQUERY, STORAGE_RO])
  })

  for (const seconds of [600, 43200]) {
    test(`serviceAccountImpersonation.tokenLifetimeSeconds ${seconds} is accepted and sent as "${seconds}s"`, TEST_TIMEOUT, async () => {
      freshEnv()
      const before = Date.now()
      const token = await new GoogleTokenFetcher(options({ serviceAccountImpersonation: { tokenLifetimeSeconds: seconds } })).getAccessToken()
      assert.deepEqual(JSON.parse(only('iam')[0].body), { scope: [CLOUD_PLATFORM], lifetime: `${seconds}s` })
      assert.ok(token.expiresAt >= before + seconds * 1000 - SLACK_MS && token.expiresAt <= Date.now() + seconds * 1000, `expiresAt ${token.expiresAt}`)
    })
  }

  test('tokenLifetimeSeconds outside 600..43200 (or fractional) throws CONFIG_INVALID from the constructor', () => {
    for (const seconds of [599, 43201, 600.5, 0, -1]) {
      assert.throws(
        () => new GoogleTokenFetcher(options({ serviceAccountImpersonation: { tokenLifetimeSeconds: seconds } })),
        (err) => {
          assertFetcherError(err, 'CONFIG_INVALID')
          assert.match(err.message, /token_lifetime_seconds/)
          assert.ok(err.message.includes(`got ${seconds}`), err.message)
          return true
        },
        `lifetime ${seconds}`,
      )
    }
    assert.equal(em.requests.length, 0)
  })

  test('invalid options throw CONFIG_INVALID naming the field', () => {
    const cases = [
      [{ audience: '' }, /audience/],
      [{ tokenUrl: 'http://sts.example.test/v1/token' }, /token_url must be an https URL/],
      [{ serviceAccountImpersonationUrl: 'http://iamcredentials.example.test/v1/x:generateAccessToken' }, /service_account_impersonation_url must be an https URL/],
      [{ tokenUrl: 'not a url' }, /token_url is not a valid URL/],
      [{ scopes: [] }, /scopes/],
      [{ scopes: ['a b'] }, /scopes/],
      [{ universeDomain: 'bad domain!' }, /universe_domain/],
    ]
    for (const [extra, pattern] of cases) {
      assert.throws(
        () => new GoogleTokenFetcher({ ...options(), ...extra }),
        (err) => assertFetcherError(err, 'CONFIG_INVALID') && pattern.test(err.message),
        JSON.stringify(extra),
      )
    }
  })

  // Issue 18, defect 14: AwsClient's snake_case names were dropped without a word (impersonation
  // skipped, the federated token handed out, the lifetime never checked).
  test("AwsClient's snake_case option names work as the camelCase ones; unknown or doubled names are CONFIG_INVALID", TEST_TIMEOUT, async () => {
    freshEnv()
    const { serviceAccountImpersonationUrl, tokenUrl, audience } = options()
    const fetcher = new GoogleTokenFetcher({
      type: 'external_account',
      subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
      audience,
      token_url: tokenUrl,
      service_account_impersonation_url: serviceAccountImpersonationUrl,
      service_account_impersonation: { token_lifetime_seconds: 1200 },
      quota_project_id: 'snake-project',
      timeout_ms: 5000,
    })
    const token = await fetcher.getAccessToken()
    assert.equal(issued(token.token).kind, 'sa', 'impersonated, not the federated token')
    assert.equal(only('iam')[0].body, `{"scope":["${CLOUD_PLATFORM}"],"lifetime":"1200s"}`)
    assert.equal((await fetcher.getRequestHeaders())['x-goog-user-project'], 'snake-project')
    const cases = [
      [{ service_account_impersonation: { token_lifetime_seconds: 99999999 } }, /token_lifetime_seconds must be a whole number from 600 to 43200/],
      [{ token_url: tokenUrl }, /options\.tokenUrl and options\.token_url are the same option/],
      [{ serviceAccountImpersonationURL: serviceAccountImpersonationUrl }, /options\.serviceAccountImpersonationURL is not an option of GoogleTokenFetcher/],
      [{ serviceAccountImpersonation: { lifetime: 1200 } }, /options\.serviceAccountImpersonation\.lifetime is not an option/],
      [{ aws_security_credentials_supplier: {} }, /finds AWS credentials itself/],
    ]
    for (const [extra, pattern] of cases) {
      assert.throws(
        () => new GoogleTokenFetcher({ ...options(), ...extra }),
        (err) => assertFetcherError(err, 'CONFIG_INVALID') && pattern.test(err.message),
        JSON.stringify(extra),
      )
    }
  })

  // Issue 12, defect 6: diagnoseAws answers options of the wrong type like every other entry point.
  test('diagnoseAws with options of the wrong type rejects with CONFIG_INVALID (no synchronous throw)', async () => {
    const { diagnoseAws } = createRequire(import.meta.url)('../index.js')
    for (const bad of [{ region: 5 }, { timeoutMs: '1000' }, { refreshMarginSeconds: {} }, { region: 'not a region!' }]) {
      let promise
      assert.doesNotThrow(() => {
        promise = diagnoseAws(bad)
      }, JSON.stringify(bad))
      await assert.rejects(promise, (err) => assertFetcherError(err, 'CONFIG_INVALID') && true, JSON.stringify(bad))
    }
  })

  // Issue 12, defect 3: a credential configuration is not trusted with where the signed AWS proof
  // and the tokens go; the application can allow more hosts in code.
  test('a credential configuration may only name AWS STS for GetCallerIdentity and Google (or allowed) hosts for tokens', () => {
    const attempts = [
      [{ credential_source: { environment_id: 'aws1', regional_cred_verification_url: 'https://attacker.example/?Action=GetCallerIdentity' } }, /regional_cred_verification_url/],
      [{ token_url: 'https://sts.attacker.example/v1/token' }, /token_url names sts\.attacker\.example/],
      [{ service_account_impersonation_url: `https://iam.attacker.example/v1/projects/-/serviceAccounts/${SA}:generateAccessToken` }, /service_account_impersonation_url names/],
    ]
    for (const [overrides, pattern] of attempts) {
      assert.throws(
        () => GoogleTokenFetcher.fromCredentialConfig(gcloudConfig(overrides)),
        (err) => assertFetcherError(err, 'CONFIG_INVALID') && pattern.test(err.message),
        JSON.stringify(overrides),
      )
    }
    const psc = gcloudConfig({ token_url: 'https://sts.private.corp.example/v1/token' })
    assert.ok(GoogleTokenFetcher.fromCredentialConfig(psc, { allowedEndpointHosts: ['.corp.example'] }))
    assert.equal(em.requests.length, 0)
  })

  /**
   * Build a fetcher from `config` and ask it for a token: the error, or undefined. Built and called
   * in one go, as an application would, so that a configuration accepted by mistake is also used.
   */
  async function tokenFrom(config, runtime) {
    try {
      await GoogleTokenFetcher.fromCredentialConfig(config, runtime).getAccessToken()
    } catch (err) {
      return err
    }
    return undefined
  }

  // Issue 18, defect 3: only GetCallerIdentity may be signed: nothing else in the query.
  test('regional_cred_verification_url with any other query is CONFIG_INVALID naming the field, and nothing is sent', TEST_TIMEOUT, async () => {
    freshEnv()
    const BASE = 'https://sts.{region}.amazonaws.com'
    for (const query of [
      `?Action=AssumeRole&RoleArn=arn:aws:iam::123456789012:role/admin&RoleSessionName=${m.envSecret}&Version=2011-06-15&Action=GetCallerIdentity`,
      '?Action=GetCallerIdentity&Version=2011-06-15&Action=GetCallerIdentity',
      `?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Security-Token=${m.envSecret}`,
    ]) {
      const config = gcloudConfig({ credential_source: { environment_id: 'aws1', regional_cred_verification_url: `${BASE}${query}` } })
      for (const source of [config, tempFile('wif.json', config)]) {
        const err = await tokenFrom(source)
        assertFetcherError(err, 'CONFIG_INVALID')
        assert.match(err.message, /credential_source\.regional_cred_verification_url must be AWS STS's GetCallerIdentity/)
        assertNoSecret(err)
      }
    }
    assert.deepEqual(em.requests, [], 'nothing was sent: no credentials fetched, nothing signed, no exchange')
    // The gcloud URL, in either order, keeps working.
    assert.ok(await GoogleTokenFetcher.fromCredentialConfig(gcloudConfig()).getAccessToken())
    assert.ok(GoogleTokenFetcher.fromCredentialConfig(gcloudConfig({ credential_source: { environment_id: 'aws1', regional_cred_verification_url: `${BASE}?Version=2011-06-15&Action=GetCallerIdentity` } })))
  })

  // Issue 18, defect 9: the universe domain chooses where google-auth-library sends the service
  // account's token (iamcredentials.<universe>, cloudresourcemanager.<universe>…).
  test('universe_domain of a credential configuration follows the host rule (googleapis.com, or allowedEndpointHosts)', TEST_TIMEOUT, async () => {
    freshEnv()
    for (const universe of ['attacker.example', 'googleapis.com.attacker.example']) {
      const config = gcloudConfig({ universe_domain: universe })
      for (const source of [config, tempFile('wif.json', config)]) {
        const err = await tokenFrom(source)
        assertFetcherError(err, 'CONFIG_INVALID')
        assert.ok(err.message.includes(`universe_domain ${universe} is not Google's`), err.message)
        assert.match(err.hint, /allowedEndpointHosts/)
      }
    }
    process.env.GOOGLE_APPLICATION_CREDENTIALS = tempFile('wif.json', gcloudConfig({ universe_domain: 'attacker.example' }))
    assert.throws(() => GoogleTokenFetcher.fromEnv(), (err) => assertFetcherError(err, 'CONFIG_INVALID') && /universe_domain/.test(err.message))
    assert.deepEqual(em.requests, [], 'nothing was sent')
    // A universe the application allows in code: its hosts, as a `.suffix`.
    const other = gcloudConfig({ universe_domain: 'universe.example.test' })
    assertFetcherError(await tokenFrom(other, { allowedEndpointHosts: ['universe.example.test'] }), 'CONFIG_INVALID')
    const allowed = GoogleTokenFetcher.fromCredentialConfig(other, { allowedEndpointHosts: ['.universe.example.test'] })
    const gal = createRequire(import.meta.url)('google-auth-library')
    assert.equal(allowed.authClient({ googleAuthLibrary: gal }).universeDomain, 'universe.example.test')
    assert.ok(await allowed.getAccessToken(), 'the token still comes from the configured (loopback) endpoints')
    // Options in code are the application's own (as tokenUrl there): universeDomain is not restricted.
    assert.ok(new GoogleTokenFetcher({ ...options(), universeDomain: 'universe.example.test' }))
  })

  // Issue 18, defect 7: no query value and no user information of a configured URL in any error.
  test('configuration errors show URLs without their query or user information', TEST_TIMEOUT, async () => {
    freshEnv()
    const secret = m.envSecret
    const attempts = [
      [{ token_url: `http://sts.example.test:8080/v1/token?key=${secret}` }, 'token_url must be an https URL (got http://sts.example.test:8080/v1/token?…)'],
      [{ token_url: `https://user:${secret}@sts.googleapis.com/v1/token` }, 'token_url must not carry user information'],
      [{ service_account_impersonation_url: `http://iam.example.test/v1/projects/-/serviceAccounts/${SA}:generateAccessToken?key=${secret}` }, 'service_account_impersonation_url must be an https URL (got http://iam.example.test/v1/projects/-/serviceAccounts/'],
      [{ credential_source: { environment_id: 'aws1', regional_cred_verification_url: `http://sts.{region}.amazonaws.com?Action=GetCallerIdentity&k=${secret}` } }, 'regional_cred_verification_url must be an https URL (got http://sts.us-east-1.amazonaws.com?…)'],
    ]
    for (const [overrides, expected] of attempts) {
      const err = await tokenFrom(gcloudConfig(overrides))
      assertFetcherError(err, 'CONFIG_INVALID')
      assert.ok(err.message.includes(expected), `${err.message}\nexpected: ${expected}`)
      assertNoSecret(err)
    }
    assert.deepEqual(em.requests, [])
  })

  // napi-rs rejects options of the wrong shape before our validation runs; index.js reports those
  // as CONFIG_INVALID too.
  test('options of the wrong shape throw CONFIG_INVALID (index.d.ts @throws)', () => {
    for (const bad of [undefined, {}, { audience: 5 }, { ...options(), scopes: 'https://www.googleapis.com/auth/cloud-platform' }, { ...options(), timeoutMs: '1000' }]) {
      assert.throws(() => new GoogleTokenFetcher(bad), (err) => assertFetcherError(err, 'CONFIG_INVALID') && true, JSON.stringify(bad))
    }
  })

  test('universeDomain sets the default token URL https://sts.<universe>/v1/token (seen in diagnose, never contacted)', TEST_TIMEOUT, async () => {
    // No region anywhere: diagnose stops at the region step, so nothing is contacted.
    freshEnv({ AWS_REGION: undefined })
    const detail = async (opts) => {
      const steps = await new GoogleTokenFetcher(opts).diagnose()
      assert.deepEqual(steps.map((s) => [s.step, s.status]), [['config', 'ok'], ['region', 'failed'], ['credentials', 'skipped'], ['subject_token', 'skipped'], ['sts', 'skipped'], ['impersonation', 'skipped']])
      return steps[0].detail
    }
    assert.match(await detail({ audience: AUDIENCE, universeDomain: 'universe.example.test' }), /; token_url https:\/\/sts\.universe\.example\.test\/v1\/token;/)
    assert.match(await detail({ audience: AUDIENCE }), /; token_url https:\/\/sts\.googleapis\.com\/v1\/token;/)
    assert.match(await detail({ audience: AUDIENCE, universeDomain: 'universe.example.test', tokenUrl: `${em.url}/v1/token` }), new RegExp(`; token_url ${em.url}/v1/token;`), 'an explicit tokenUrl wins')
    assert.equal(em.requests.length, 0)
  })

  test('getRequestHeaders: authorization Bearer <token>, plus x-goog-user-project with quotaProjectId', TEST_TIMEOUT, async () => {
    freshEnv()
    const withQuota = new GoogleTokenFetcher(options({ quotaProjectId: 'quota-project-1' }))
    assert.equal(withQuota.quotaProjectId, 'quota-project-1')
    const headers = await withQuota.getRequestHeaders()
    const { token } = await withQuota.getAccessToken()
    assert.deepEqual(headers, { authorization: `Bearer ${token}`, 'x-goog-user-project': 'quota-project-1' })
    assert.equal(issued(token).kind, 'sa')

    const plain = new GoogleTokenFetcher(options({ impersonate: false }))
    assert.equal(plain.quotaProjectId, null)
    const plainHeaders = await plain.getRequestHeaders()
    assert.deepEqual(Object.keys(plainHeaders), ['authorization'])
    assert.match(plainHeaders.authorization, /^Bearer ya29\.sts\./)
    assert.equal(issued(plainHeaders.authorization.slice('Bearer '.length)).kind, 'sts')
  })

  test('one native path: the wrapper builds every public method on the lease methods; the native classes have no second path', () => {
    const binding = createRequire(import.meta.url)('../binding.js')
    for (const name of ['getAccessToken', 'getRequestHeaders']) {
      assert.equal(binding.GoogleTokenFetcher.prototype[name], undefined, `native ${name}`)
      assert.equal(typeof GoogleTokenFetcher.prototype[name], 'function', `public ${name}`)
    }
    assert.equal(typeof binding.GoogleTokenFetcher.prototype.tokenLease, 'function')
    const { ContainerAwsCredentialsSupplier } = createRequire(import.meta.url)('../index.js')
    assert.equal(binding.ContainerAwsCredentialsSupplier.prototype.getAwsSecurityCredentials, undefined)
    assert.equal(typeof binding.ContainerAwsCredentialsSupplier.prototype.credentialsLease, 'function')
    assert.equal(typeof ContainerAwsCredentialsSupplier.prototype.getAwsSecurityCredentials, 'function')
  })

  test('the binding exports the token defaults and the ID-token bound, so JavaScript restates neither', () => {
    const binding = createRequire(import.meta.url)('../binding.js')
    assert.equal(binding.__maxIdTokenAudiences(), 64)
    assert.equal(binding.__metadataServerBackgroundRefresh(), true)
    assert.deepEqual([undefined, null, true, false].map((o) => binding.__authClientBackgroundRefresh(o)), [true, true, true, false])
    assert.equal(new binding.GoogleTokenFetcher(options()).backgroundRefresh, false, "a fetcher's own default")
    assert.equal(new binding.GoogleTokenFetcher(options({ backgroundRefresh: true })).backgroundRefresh, true)
  })

  test('the fetcher object shows no token or secret', TEST_TIMEOUT, async () => {
    freshEnv()
    const fetcher = new GoogleTokenFetcher(options({ quotaProjectId: 'qp' }))
    const { token } = await fetcher.getAccessToken()
    for (const text of [inspect(fetcher), inspect(fetcher, { showHidden: true, depth: 10 }), JSON.stringify(fetcher), String(fetcher), JSON.stringify(Object.keys(fetcher))]) {
      assert.ok(!text.includes(token), text)
      assert.deepEqual(leakedMarkers(text, FETCHER_MARKERS), [], text)
    }
  })
})

// ---------------------------------------------------------------------------------------------

describe('from the gcloud credential configuration', () => {
  /** Assert a whole impersonated flow happened with credentials from the container endpoint only. */
  function assertConfigFlow(token, { lifetime }) {
    assert.match(token.token, /^ya29\.sa\./)
    assert.equal(issued(token.token).kind, 'sa')
    assertOneGoodExchange({ scope: CLOUD_PLATFORM })
    assert.deepEqual(JSON.parse(only('iam')[0].body), { scope: [CLOUD_PLATFORM], lifetime: `${lifetime}s` })
    assert.equal(em.count('container'), 1, 'credentials come from the container FULL_URI')
    assert.equal(em.count('imds'), 0, 'the EC2 credential_source URLs (region_url, url, imdsv2_session_token_url) are not contacted')
  }

  test('fromCredentialConfig(path): the file create-cred-config --aws writes', TEST_TIMEOUT, async () => {
    freshEnv()
    const path = tempFile('wif.json', gcloudConfig({ service_account_impersonation: { token_lifetime_seconds: 1800 } }))
    assertConfigFlow(await GoogleTokenFetcher.fromCredentialConfig(path).getAccessToken(), { lifetime: 1800 })
  })

  test('fromCredentialConfig(object): the parsed file', TEST_TIMEOUT, async () => {
    freshEnv()
    assertConfigFlow(await GoogleTokenFetcher.fromCredentialConfig(gcloudConfig()).getAccessToken(), { lifetime: 3600 })
  })

  test('fromCredentialConfig without service_account_impersonation_url: the STS token', TEST_TIMEOUT, async () => {
    freshEnv()
    const fetcher = GoogleTokenFetcher.fromCredentialConfig(gcloudConfig({ service_account_impersonation_url: undefined, service_account_impersonation: undefined }))
    const token = await fetcher.getAccessToken()
    assert.equal(issued(token.token).kind, 'sts')
    assertOneGoodExchange({ scope: CLOUD_PLATFORM })
    assert.equal(em.count('iam'), 0)
    assert.equal(em.count('imds'), 0)
  })

  test('quota_project_id, client_id and client_secret from the file: x-goog-user-project, HTTP Basic to STS, secret never shown', TEST_TIMEOUT, async () => {
    freshEnv()
    const clientSecret = `MARKER-CLIENT-SECRET-${m.secretKey.split('-').at(-1)}`
    const fetcher = GoogleTokenFetcher.fromCredentialConfig(gcloudConfig({ quota_project_id: 'billing-project', client_id: 'client-id-1', client_secret: clientSecret }))
    assert.equal(fetcher.quotaProjectId, 'billing-project')
    const headers = await fetcher.getRequestHeaders()
    assert.deepEqual(Object.keys(headers).sort(), ['authorization', 'x-goog-user-project'])
    assert.equal(headers['x-goog-user-project'], 'billing-project')
    const [sts] = only('sts')
    assert.equal(sts.headers.authorization, `Basic ${Buffer.from(`client-id-1:${clientSecret}`).toString('base64')}`)
    assert.equal(sts.verdict.ok, true)
    assert.ok(!only('iam')[0].headers.authorization.startsWith('Basic'), 'IAM gets the bearer token, not the client credentials')
    const steps = await fetcher.diagnose()
    const text = JSON.stringify(steps) + inspect(fetcher, { showHidden: true, depth: 10 })
    assert.ok(!text.includes(clientSecret), 'client_secret shown by diagnose or inspect')
  })

  test('runtime options apply: region overrides AWS_REGION', TEST_TIMEOUT, async () => {
    freshEnv()
    await GoogleTokenFetcher.fromCredentialConfig(gcloudConfig(), { region: 'eu-north-1' }).getAccessToken()
    const [sts] = only('sts')
    assert.equal(sts.verdict.ok, true)
    assert.equal(subjectTokenRegion(sts.body), 'eu-north-1')
  })

  test('environment_id aws2 → CONFIG_INVALID naming the value (path and object)', () => {
    const config = gcloudConfig({ credential_source: { ...gcloudConfig().credential_source, environment_id: 'aws2' } })
    const path = tempFile('aws2.json', config)
    for (const input of [path, config]) {
      assert.throws(
        () => GoogleTokenFetcher.fromCredentialConfig(input),
        (err) => {
          assertFetcherError(err, 'CONFIG_INVALID')
          assert.ok(err.message.includes('"aws2"'), err.message)
          assert.match(err.message, /environment_id/)
          if (typeof input === 'string') assert.ok(err.message.includes(path), `the path is not named: ${err.message}`)
          return true
        },
      )
    }
  })

  test('malformed JSON → CONFIG_INVALID naming the path', () => {
    const path = tempFile('malformed.json', '{"type": "external_account", "audience": ')
    assert.throws(
      () => GoogleTokenFetcher.fromCredentialConfig(path),
      (err) => assertFetcherError(err, 'CONFIG_INVALID') && err.message.includes(path) && /not valid JSON/.test(err.message),
    )
  })

  test('missing audience → CONFIG_INVALID', () => {
    for (const input of [tempFile('no-audience.json', gcloudConfig({ audience: undefined })), gcloudConfig({ audience: undefined })]) {
      assert.throws(
        () => GoogleTokenFetcher.fromCredentialConfig(input),
        (err) => assertFetcherError(err, 'CONFIG_INVALID') && /audience is missing/.test(err.message),
      )
    }
  })

  test('an unreadable path → CONFIG_INVALID naming it; a non-object argument → CONFIG_INVALID', () => {
    const path = join(dir, 'does-not-exist.json')
    assert.throws(() => GoogleTokenFetcher.fromCredentialConfig(path), (err) => assertFetcherError(err, 'CONFIG_INVALID') && err.message.includes(path))
    assert.throws(() => GoogleTokenFetcher.fromCredentialConfig(42), (err) => assertFetcherError(err, 'CONFIG_INVALID') && /file path or a parsed configuration object/.test(err.message))
  })

  test('fromEnv(): GOOGLE_APPLICATION_CREDENTIALS names the file', TEST_TIMEOUT, async () => {
    freshEnv({ GOOGLE_APPLICATION_CREDENTIALS: tempFile('gac.json', gcloudConfig()) })
    assertConfigFlow(await GoogleTokenFetcher.fromEnv().getAccessToken(), { lifetime: 3600 })
  })

  test('fromEnv() with GOOGLE_APPLICATION_CREDENTIALS unset → CONFIG_INVALID naming the variable', () => {
    freshEnv()
    assert.throws(
      () => GoogleTokenFetcher.fromEnv(),
      (err) => assertFetcherError(err, 'CONFIG_INVALID') && /GOOGLE_APPLICATION_CREDENTIALS is not set/.test(err.message) && typeof err.hint === 'string',
    )
  })
})

// ---------------------------------------------------------------------------------------------

describe('token cache', () => {
  test('a second getAccessToken is answered from the cache: no new STS or IAM request', TEST_TIMEOUT, async () => {
    freshEnv()
    const fetcher = new GoogleTokenFetcher(options())
    const first = await fetcher.getAccessToken()
    const count = em.requests.length
    const second = await fetcher.getAccessToken()
    const headers = await fetcher.getRequestHeaders()
    assert.deepEqual(second, first)
    assert.equal(headers.authorization, `Bearer ${first.token}`)
    assert.equal(em.requests.length, count, 'no request after the first fetch')
    assert.deepEqual([em.count('sts'), em.count('iam')], [1, 1])
  })

  test('200 concurrent cold calls share one fetch: 1 STS and 1 IAM request', TEST_TIMEOUT, async () => {
    freshEnv()
    em.fault('sts', { delayMs: 200 }) // keep the first fetch in flight while the others arrive
    const fetcher = new GoogleTokenFetcher(options())
    const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 4 === 3 ? fetcher.getRequestHeaders().then((h) => ({ token: h.authorization.slice(7) })) : fetcher.getAccessToken())))
    assert.equal(new Set(tokens.map((t) => t.token)).size, 1)
    assert.deepEqual([em.count('container'), em.count('sts'), em.count('iam')], [1, 1, 1])
  })

  // The JavaScript fast path (index.js hands back the settled promise until the refresh deadline the
  // native cache reports) must let go of a token at that deadline, keep serving it while a refresh
  // fails, and pick up the new one once the refresh succeeds. A 600 s token with a 598 s margin and
  // no jitter is due for refresh 2 s after it was issued.
  test('fast path: refreshed at its deadline; a failed refresh keeps serving the valid token; then the new one', TEST_TIMEOUT, async () => {
    freshEnv()
    const fetcher = new GoogleTokenFetcher(options({ serviceAccountImpersonation: { tokenLifetimeSeconds: 600 }, refreshMarginSeconds: 598, refreshJitterSeconds: 0 }))
    const first = await fetcher.getAccessToken()
    assert.equal(issued(first.token).kind, 'sa')
    assert.deepEqual([em.count('sts'), em.count('iam')], [1, 1])
    em.setAlways('iam', { status: 500 })

    // Past the deadline the next calls reach the native cache, whose refresh fails (3 attempts).
    const served = []
    await pollUntil(
      async () => {
        served.push(await fetcher.getAccessToken())
        return em.count('iam') >= 4
      },
      { timeoutMs: 15_000, what: 'a failed refresh' },
    )
    assert.ok(served.length > 1, 'calls were answered while the refresh was due')
    for (const t of served) assert.deepEqual(t, first, 'the still-valid token is served while the refresh fails')
    assert.ok(only('iam').slice(1).every((r) => r.status === 500))

    // Recovery after the backoff (at most 5 s for a first failure), without any new error.
    em.setAlways('iam', null)
    const fresh = await pollUntil(
      async () => {
        const t = await fetcher.getAccessToken()
        if (t.token === first.token) assert.deepEqual(t, first)
        return t.token !== first.token && t
      },
      { timeoutMs: 15_000, what: 'a new token after recovery' },
    )
    assert.equal(issued(fresh.token).kind, 'sa')
    assert.ok(fresh.expiresAt > first.expiresAt)
    assert.equal(only('iam').at(-1).status, 200)
    assert.deepEqual((await fetcher.getRequestHeaders()).authorization, `Bearer ${fresh.token}`)
  })

  test('4 worker_threads, each with its own fetcher: one STS and one IAM exchange in the process', TEST_TIMEOUT, async () => {
    freshEnv()
    em.fault('sts', { delayMs: 100 }) // the first fetch is still in flight when the other workers ask
    const body = `
      const { GoogleTokenFetcher } = require(workerData.index)
      const fetcher = new GoogleTokenFetcher(workerData.options)
      return () => fetcher.getAccessToken()
    `
    const tokens = await inWorkers(4, body, { index: here('../index.js'), options: options() })
    for (const t of tokens) assert.equal(t.error, undefined, JSON.stringify(t.error))
    assert.equal(issued(tokens[0].token).kind, 'sa')
    for (const t of tokens) assert.deepEqual(t, tokens[0])
    assert.deepEqual([em.count('container'), em.count('sts'), em.count('iam')], [1, 1, 1])
  })

  test('STS 500 three times: the failure is not cached, the next call succeeds', TEST_TIMEOUT, async () => {
    freshEnv()
    em.fault('sts', { status: 500 }, { status: 500 }, { status: 500 })
    const fetcher = new GoogleTokenFetcher(options())
    const err = assertFetcherError(await rejection(fetcher.getAccessToken()), 'STS_EXCHANGE_FAILED')
    assert.equal(err.status, 500)
    assert.equal(err.retryable, true)
    assert.equal(em.count('sts'), 3, '5xx is retried up to 3 attempts')
    assertNoSecret(err)
    const token = await fetcher.getAccessToken()
    assert.equal(issued(token.token).kind, 'sa')
    assert.equal(em.count('sts'), 4)
    assert.equal(em.count('container'), 1, 'the AWS credentials were cached all along')
  })

  test('STS 400 invalid_grant: STS_EXCHANGE_FAILED with googleError, googleErrorDescription and a hint; not cached', TEST_TIMEOUT, async () => {
    freshEnv()
    // A description that (like some real proxies and error pages) echoes the secrets: they must be scrubbed.
    const description = `Unable to verify the AWS response. Received invalid AWS response of type InvalidClientTokenId with error message: The security token included in the request is invalid. ${m.sessionToken} ${m.secretKey}`
    em.fault('sts', { status: 400, body: { error: 'invalid_grant', error_description: description } })
    const fetcher = new GoogleTokenFetcher(options())
    const err = assertFetcherError(await rejection(fetcher.getAccessToken()), 'STS_EXCHANGE_FAILED')
    assert.equal(err.status, 400)
    assert.equal(err.retryable, false)
    assert.equal(err.googleError, 'invalid_grant')
    assert.equal(typeof err.googleErrorDescription, 'string')
    assert.ok(err.googleErrorDescription.startsWith('Unable to verify the AWS response. Received invalid AWS response of type InvalidClientTokenId'), err.googleErrorDescription)
    assert.equal(typeof err.hint, 'string')
    assert.match(err.hint, /GetCallerIdentity/)
    assert.match(err.message, /invalid_grant/)
    assert.equal(em.count('sts'), 1, 'a 400 is not retried')
    assertNoSecret(err)
    assert.equal(issued((await fetcher.getAccessToken()).token).kind, 'sa', 'the next call succeeds')
    assert.equal(em.count('sts'), 2)
  })

  test("STS 403 in Google's RPC shape (API not enabled): googleError, googleErrorDescription, message and hint carry it", TEST_TIMEOUT, async () => {
    freshEnv()
    const message = `Security Token Service API has not been used in project 123456 before or it is disabled. ${m.sessionToken}`
    em.fault('sts', { status: 403, body: { error: { code: 403, message, status: 'PERMISSION_DENIED' } } })
    const err = assertFetcherError(await rejection(new GoogleTokenFetcher(options()).getAccessToken()), 'STS_EXCHANGE_FAILED')
    assert.equal(err.status, 403)
    assert.equal(err.googleError, 'PERMISSION_DENIED')
    assert.match(err.googleErrorDescription, /^Security Token Service API has not been used in project 123456/)
    assert.match(err.message, /PERMISSION_DENIED: Security Token Service API has not been used/)
    assert.match(err.hint, /enable the Security Token Service API/)
    assertNoSecret(err)
  })

  test("IAM 400 in the OAuth shape: googleError and googleErrorDescription carry it", TEST_TIMEOUT, async () => {
    freshEnv()
    em.fault('iam', { status: 400, body: { error: 'invalid_request', error_description: 'lifetime is too long' } })
    const err = assertFetcherError(await rejection(new GoogleTokenFetcher(options()).getAccessToken()), 'IMPERSONATION_FAILED')
    assert.equal(err.status, 400)
    assert.equal(err.googleError, 'invalid_request')
    assert.equal(err.googleErrorDescription, 'lifetime is too long')
    assert.match(err.message, /invalid_request: lifetime is too long/)
  })

  test('a real signature rejection (static keys Google STS cannot verify): invalid_grant, the hint', TEST_TIMEOUT, async () => {
    freshEnv({ AWS_ACCESS_KEY_ID: 'AKIAFETCHERUNKNOWN01', AWS_SECRET_ACCESS_KEY: m.envSecret })
    const err = assertFetcherError(await rejection(new GoogleTokenFetcher(options()).getAccessToken()), 'STS_EXCHANGE_FAILED')
    const [sts] = only('sts')
    assert.equal(sts.verdict.reason, 'unknown-access-key')
    assert.equal(err.googleError, 'invalid_grant')
    assert.match(err.googleErrorDescription, /InvalidClientTokenId/)
    assert.match(err.hint, /GetCallerIdentity/)
    assert.ok(err.message.includes('AKIA…WN01') && !err.message.includes('AKIAFETCHERUNKNOWN01'), `key id not masked: ${err.message}`)
    assert.equal(em.count('container'), 0, 'environment keys come first')
    assertNoSecret(err)
  })

  test('IAM 403 PERMISSION_DENIED → IMPERSONATION_FAILED with a roles/iam.workloadIdentityUser hint', TEST_TIMEOUT, async () => {
    freshEnv()
    em.config.serviceAccount = 'someone-else@my-project.iam.gserviceaccount.com'
    const err = assertFetcherError(await rejection(new GoogleTokenFetcher(options()).getAccessToken()), 'IMPERSONATION_FAILED')
    assert.equal(err.status, 403)
    assert.equal(err.googleError, 'PERMISSION_DENIED')
    assert.match(err.googleErrorDescription, /iam\.serviceAccounts\.getAccessToken/)
    assert.match(err.hint, /roles\/iam\.workloadIdentityUser/)
    assert.ok(err.hint.includes(SA), 'the hint names the service account')
    assert.deepEqual([em.count('sts'), em.count('iam')], [1, 1], 'a 403 is not retried')
    assertNoSecret(err)
  })

  test('IAM 401 UNAUTHENTICATED → IMPERSONATION_FAILED; not cached', TEST_TIMEOUT, async () => {
    freshEnv()
    em.fault('iam', { status: 401, body: { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } } })
    const fetcher = new GoogleTokenFetcher(options())
    const err = assertFetcherError(await rejection(fetcher.getAccessToken()), 'IMPERSONATION_FAILED')
    assert.equal(err.status, 401)
    assert.equal(err.googleError, 'UNAUTHENTICATED')
    assert.match(err.hint, /cloud-platform/)
    assertNoSecret(err)
    assert.equal(issued((await fetcher.getAccessToken()).token).kind, 'sa')
  })

  test('a 200 from STS that is not JSON → INVALID_TOKEN_RESPONSE, without quoting the body', TEST_TIMEOUT, async () => {
    freshEnv()
    em.fault('sts', { status: 200, contentType: 'text/html', body: `not json ${m.sessionToken}` })
    const fetcher = new GoogleTokenFetcher(options())
    const err = assertFetcherError(await rejection(fetcher.getAccessToken()), 'INVALID_TOKEN_RESPONSE')
    assert.ok(!err.message.includes('not json'), err.message)
    assertNoSecret(err)
    assert.equal(em.count('iam'), 0)
    assert.equal(issued((await fetcher.getAccessToken()).token).kind, 'sa', 'not cached')
  })

  test('a 200 from IAM without accessToken → INVALID_TOKEN_RESPONSE naming the field', TEST_TIMEOUT, async () => {
    freshEnv()
    em.fault('iam', { status: 200, body: { expireTime: '2030-01-01T00:00:00Z' } })
    const err = assertFetcherError(await rejection(new GoogleTokenFetcher(options()).getAccessToken()), 'INVALID_TOKEN_RESPONSE')
    assert.match(err.message, /accessToken/)
    assertNoSecret(err)
  })

  test('STS never answers, timeoutMs 1000 → TIMEOUT within the bound', TEST_TIMEOUT, async () => {
    freshEnv()
    em.setAlways('sts', { hang: true })
    const fetcher = new GoogleTokenFetcher(options({ timeoutMs: 1000 }))
    const started = performance.now()
    const err = assertFetcherError(await rejection(fetcher.getAccessToken()), 'TIMEOUT')
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 900 && elapsed <= 1000 + SLACK_MS, `rejected after ${Math.round(elapsed)} ms`)
    assert.equal(err.retryable, true)
    assert.match(err.message, /Google STS/)
    assertNoSecret(err)
    assert.equal(em.count('iam'), 0)
  })
})

// ---------------------------------------------------------------------------------------------

/** node:test's mock.timers freezes `Date` (what the differential fixture needs) from Node 20.11 on. */
const DATE_MOCK = (([major, minor]) => major > 20 || (major === 20 && minor >= 11))(process.versions.node.split('.').map(Number))

describe('differential: google-auth-library AwsClient + ContainerAwsCredentialsSupplier vs GoogleTokenFetcher', { skip: !DATE_MOCK && `node:test cannot freeze Date on Node ${process.version} (needs 20.11)` }, () => {
  /** Run the differential fixture; both sides must have reached STS with a valid signature. */
  async function differential(scenario) {
    const env = hermeticEnv({ NODE_NO_WARNINGS: '1', WIF_SCENARIO: JSON.stringify(scenario) })
    const run = await runNode(here('fixtures/differential.mjs'), { env, timeoutMs: 30_000 })
    assert.equal(run.timedOut, false, run.stderr)
    assert.equal(run.code, 0, run.stderr)
    assert.ok(run.result, `no JSON result\n${run.stdout}\n${run.stderr}`)
    assert.equal(run.result.fatal, undefined, JSON.stringify(run.result.fatal))
    assert.deepEqual(leakedMarkers(run.stdout + run.stderr, { secretKey: scenario.credentials.secretAccessKey, ...(scenario.credentials.token ? { token: scenario.credentials.token } : {}) }), [], 'a secret in the fixture output')
    return run.result
  }

  function assertSameSubjectToken({ native, reference, identical, bodiesIdentical }, { region, accessKeyId, sessionToken }) {
    for (const side of [native, reference]) {
      assert.deepEqual(side.verdict, { ok: true, reason: 'ok', accessKeyId, region })
      const t = side.subjectToken
      assert.equal(t.url, `https://sts.${region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15`)
      assert.equal(t.method, 'POST')
    }
    const names = (side) => side.subjectToken.headers.map((h) => h.key)
    const expectedNames = ['authorization', 'host', 'x-amz-date', ...(sessionToken ? ['x-amz-security-token'] : []), 'x-goog-cloud-target-resource']
    assert.deepEqual(names(reference), expectedNames, 'google-auth-library header names and order')
    assert.deepEqual(names(native), names(reference), 'same header names, same order')
    assert.deepEqual(native.subjectToken, reference.subjectToken, 'same decoded subject token (same second)')
    assert.equal(identical, true, 'byte-identical subject_token values')
    assert.deepEqual(native.form, reference.form, 'same STS form fields, same order')
    assert.equal(bodiesIdentical, true, 'byte-identical STS form bodies')
    assert.equal(native.iamBody, reference.iamBody, 'same IAM request body')
    assert.equal(native.tokenKind, reference.tokenKind)
  }

  test('temporary credentials from the container endpoint, with impersonation', { timeout: 40_000 }, async () => {
    const credentials = { accessKeyId: 'ASIADIFFERENTIAL0001', secretAccessKey: `${m.secretKey}-diff`, token: `${m.sessionToken}-diff` }
    const result = await differential({ credentials, region: 'eu-west-2', impersonate: true })
    assertSameSubjectToken(result, { region: 'eu-west-2', accessKeyId: credentials.accessKeyId, sessionToken: true })
    assert.equal(result.native.tokenKind, 'sa')
    assert.deepEqual(result.native.form.find(([k]) => k === 'scope'), ['scope', CLOUD_PLATFORM])
  })

  test('long-term static keys, no impersonation, custom scopes', { timeout: 40_000 }, async () => {
    const credentials = { accessKeyId: 'AKIADIFFERENTIAL0002', secretAccessKey: `${m.envSecret}-diff` }
    const result = await differential({ static: true, credentials, region: 'ap-south-1', impersonate: false, scopes: [BIGQUERY, STORAGE_RO] })
    assertSameSubjectToken(result, { region: 'ap-south-1', accessKeyId: credentials.accessKeyId, sessionToken: false })
    assert.equal(result.native.tokenKind, 'sts')
    assert.deepEqual(result.native.form.find(([k]) => k === 'scope'), ['scope', `${BIGQUERY} ${STORAGE_RO}`])
    // The decoded form: the x-goog-cloud-target-resource header is the audience, unsigned by both.
    const target = result.native.subjectToken.headers.find((h) => h.key === 'x-goog-cloud-target-resource')
    assert.equal(target.value, AUDIENCE)
    assert.match(result.native.subjectToken.headers[0].value, /SignedHeaders=host;x-amz-date, /)
  })
})
