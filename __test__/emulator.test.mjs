// Self-tests of the loopback emulator (run: node --test __test__/emulator.test.mjs).
//
// They prove the emulator against independent clients, never against the addon: google-auth-library's
// real AwsClient, the real @google-cloud/bigquery client, the AWS SDK for JavaScript's credential
// providers, and a hand-written SigV4 signer (emulator/subject-token.mjs). The process is hermetic: no
// ambient AWS/Google settings, IMDS disabled, every server on 127.0.0.1 (link-local addresses only
// inside a private network namespace, see netns.mjs).

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, afterEach, before, beforeEach, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DEFAULT_CONFIG, GREETING, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { encodeSubjectToken, signGetCallerIdentity, withHeader } from './emulator/subject-token.mjs'
import { assertIsolated, netnsUnavailableReason, runInNetns } from './netns.mjs'

makeProcessHermetic()
// Imported after the environment is clean, so nothing can pick up ambient configuration.
const { AwsClient } = await import('./stack.mjs')
const { BigQuery } = await import('./stack.mjs')
const { fromHttp, fromTokenFile } = await import('@aws-sdk/credential-providers')

const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const TEST_TIMEOUT = { timeout: 20_000 }
const AWS4_REQUEST = 'urn:ietf:params:aws:token-type:aws4_request'
const POD_IDENTITY_TOKEN = 'eks-pod-identity-token'

/** An emulator per describe block, with config and log reset before each test. */
function useEmulator() {
  const ctx = {}
  before(async () => {
    ctx.em = await startEmulator()
  })
  beforeEach(() => {
    ctx.em.reset()
    ctx.em.config = { ...DEFAULT_CONFIG }
  })
  after(() => ctx.em.close())
  return ctx
}

/** A pure-JS AwsSecurityCredentialsSupplier: EKS Pod Identity through the AWS SDK's fromHttp. */
function podIdentitySupplier(em) {
  const provider = fromHttp({ awsContainerCredentialsFullUri: `${em.url}/v1/credentials`, awsContainerAuthorizationToken: POD_IDENTITY_TOKEN })
  return {
    getAwsRegion: async () => em.config.region,
    getAwsSecurityCredentials: async () => {
      const c = await provider()
      return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, token: c.sessionToken }
    },
  }
}

/** A pure-JS supplier for ECS (RELATIVE_URI style route) with plain fetch. */
function ecsFetchSupplier(em) {
  return {
    getAwsRegion: async () => em.config.region,
    getAwsSecurityCredentials: async () => {
      const body = await (await fetch(`${em.url}/v2/credentials/6f3c0b5e-0000-4000-8000-000000000000`)).json()
      return { accessKeyId: body.AccessKeyId, secretAccessKey: body.SecretAccessKey, token: body.Token }
    },
  }
}

function awsClient(em, supplier, { impersonate }) {
  return new AwsClient({
    audience: em.config.audience,
    subject_token_type: AWS4_REQUEST,
    token_url: `${em.url}/v1/token`,
    ...(impersonate && { service_account_impersonation_url: `${em.url}/v1/projects/-/serviceAccounts/${em.config.serviceAccount}:generateAccessToken` }),
    aws_security_credentials_supplier: supplier,
  })
}

function bigQuery(em, authClient) {
  return new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: em.url })
}

/** POST a form to the Google STS emulator; returns {status, body, verdict}. */
/** POST an STS token exchange (an override of undefined leaves that parameter out). */
async function exchange(em, subjectToken, overrides = {}) {
  const params = {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience: em.config.audience,
    scope: 'https://www.googleapis.com/auth/cloud-platform',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token: subjectToken,
    subject_token_type: AWS4_REQUEST,
    ...overrides,
  }
  const form = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined))
  const res = await fetch(`${em.url}/v1/token`, { method: 'POST', body: form })
  return { status: res.status, body: await res.json(), verdict: em.requests.at(-1).verdict }
}

async function getJson(url, init) {
  const res = await fetch(url, init)
  return { status: res.status, headers: res.headers, body: await res.json() }
}

const assumedRole = (session) => `arn:aws:sts::123456789012:assumed-role/wif-demo-role/${session}`
const POOL = 'principal://iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/pool/subject/'

describe('google-auth-library AwsClient and @google-cloud/bigquery through the emulator', () => {
  const ctx = useEmulator()

  test('EKS Pod Identity supplier, STS, impersonation, BigQuery jobs.query', TEST_TIMEOUT, async () => {
    const { em } = ctx
    em.config.containerAuthToken = POD_IDENTITY_TOKEN
    const client = awsClient(em, podIdentitySupplier(em), { impersonate: true })
    const { token } = await client.getAccessToken()
    assert.match(token, /^ya29\.sa\./)

    const [rows] = await bigQuery(em, client).query({ query: 'SELECT greeting, principal, n FROM emulator', location: 'US' })
    assert.deepEqual(rows, [{ greeting: GREETING, principal: em.config.serviceAccount, n: 42 }])

    const sts = em.requests.find((r) => r.route === 'sts')
    assert.equal(sts.verdict.ok, true)
    // google-auth-library adds x-goog-cloud-target-resource after signing.
    assert.deepEqual(sts.verdict.signedHeaders, ['host', 'x-amz-date', 'x-amz-security-token'])
    assert.equal(sts.verdict.principal, POOL + assumedRole('0123456789abcdef'))
    assert.deepEqual(
      em.requests.map((r) => `${r.route} ${r.method} ${r.status}`),
      ['container GET 200', 'sts POST 200', 'iam POST 200', 'bigquery POST 200'],
    )
    const bq = em.requests.find((r) => r.route === 'bigquery')
    assert.equal(bq.query, 'SELECT greeting, principal, n FROM emulator')
    assert.match(bq.path, /^\/bigquery\/v2\/projects\/my-project\/queries/)
  })

  test('ECS supplier without impersonation: BigQuery sees the federated principal', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const client = awsClient(em, ecsFetchSupplier(em), { impersonate: false })
    const [rows] = await bigQuery(em, client).query({ query: 'SELECT 1', location: 'US' })
    assert.deepEqual(rows, [{ greeting: GREETING, principal: POOL + assumedRole('0123456789abcdef'), n: 42 }])
    assert.equal(em.count('iam'), 0)
    assert.equal(em.count('sts'), 1)
  })

  test('BigQuery jobs.insert, jobs.getQueryResults and jobs.get (the non-fast path)', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const bq = bigQuery(em, awsClient(em, ecsFetchSupplier(em), { impersonate: true }))
    const [job] = await bq.createQueryJob({ query: 'SELECT 2', location: 'US', jobId: 'emulator-job-1' })
    const [rows] = await job.getQueryResults()
    assert.deepEqual(rows, [{ greeting: GREETING, principal: em.config.serviceAccount, n: 42 }])
    const [metadata] = await job.getMetadata()
    assert.equal(metadata.status.state, 'DONE')
    const paths = em.requests.filter((r) => r.route === 'bigquery').map((r) => `${r.method} ${r.path.split('?')[0]}`)
    assert.deepEqual(paths, [
      'POST /bigquery/v2/projects/my-project/jobs',
      'GET /bigquery/v2/projects/my-project/queries/emulator-job-1',
      'GET /bigquery/v2/projects/my-project/jobs/emulator-job-1',
    ])
  })

  test('BigQuery refuses a missing or unknown bearer token', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const url = `${em.url}/bigquery/v2/projects/my-project/queries`
    for (const headers of [{}, { authorization: 'Bearer ya29.not-issued' }]) {
      const res = await getJson(url, { method: 'POST', headers, body: JSON.stringify({ query: 'SELECT 1' }) })
      assert.equal(res.status, 401)
      assert.equal(res.body.error.status, 'UNAUTHENTICATED')
    }
  })

  test('IAM generateAccessToken: unknown bearer 401, other account 403, bad lifetime 400', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const stsToken = (await exchange(em, encodeSubjectToken(signedRequest(em)))).body.access_token
    const call = (email, bearer, lifetime = '3600s') =>
      getJson(`${em.url}/v1/projects/-/serviceAccounts/${email}:generateAccessToken`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime }),
      })
    const sa = em.config.serviceAccount
    assert.equal((await call(sa, 'ya29.unknown')).body.error.status, 'UNAUTHENTICATED')
    const denied = await call('other@my-project.iam.gserviceaccount.com', stsToken)
    assert.equal(denied.status, 403)
    assert.match(denied.body.error.message, /iam\.serviceAccounts\.getAccessToken/)
    assert.equal((await call(sa, stsToken, '43201s')).body.error.status, 'INVALID_ARGUMENT')
    const ok = await call(sa, stsToken, '600s')
    assert.equal(ok.status, 200)
    const lifetimeMs = Date.parse(ok.body.expireTime) - Date.now()
    assert.ok(lifetimeMs > 590_000 && lifetimeMs <= 600_000, `expireTime ${ok.body.expireTime}`)
  })
})

describe('Credential Access Boundaries: STS downscoping and Cloud Storage objects.get', () => {
  const ctx = useEmulator()
  const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
  const rule = (extra = {}) => ({ availableResource: '//storage.googleapis.com/projects/_/buckets/reports', availablePermissions: ['inRole:roles/storage.objectViewer'], ...extra })
  const boundary = (...rules) => ({ accessBoundary: { accessBoundaryRules: rules } })
  /** A downscoping request as google-auth-library's StsCredentials sends it (no audience, no scope). */
  const downscope = (em, subjectToken, options) =>
    exchange(em, subjectToken, { subject_token_type: ACCESS_TOKEN, audience: undefined, scope: undefined, ...(options === undefined ? {} : { options: typeof options === 'string' ? options : JSON.stringify(options) }) })
  const sourceToken = async (em) => (await exchange(em, encodeSubjectToken(signedRequest(em)))).body.access_token
  const read = (em, bearer, bucket, object) =>
    getJson(`${em.url}/storage/v1/b/${bucket}/o/${encodeURIComponent(object)}`, bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {})

  test('a downscoped token: the source principal, scopes and expiry, and the boundary; objects.get only within it', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const source = await sourceToken(em)
    const res = await downscope(em, source, boundary(rule({ availabilityCondition: { expression: "resource.name.startsWith('projects/_/buckets/reports/objects/daily/')" } })))
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual([...new URLSearchParams(em.requests.at(-1).body).keys()].sort(), ['grant_type', 'options', 'requested_token_type', 'subject_token', 'subject_token_type'])
    assert.deepEqual(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'token_type'])
    assert.equal(res.body.issued_token_type, ACCESS_TOKEN)
    const [record, src] = [em.googleTokens.get(res.body.access_token), em.googleTokens.get(source)]
    assert.deepEqual([record.kind, record.principal, record.scopes, record.expiresAt], ['downscoped', src.principal, src.scopes, src.expiresAt])
    assert.ok(res.body.expires_in <= 3600 && res.body.expires_in >= 3590, `expires_in ${res.body.expires_in}: the source's remaining lifetime`)
    const token = res.body.access_token
    assert.equal((await read(em, token, 'reports', 'daily/a.csv')).status, 200)
    assert.deepEqual((await read(em, token, 'reports', 'daily/a.csv')).body, { kind: 'storage#object', id: 'reports/daily/a.csv/1', bucket: 'reports', name: 'daily/a.csv', generation: '1', contentType: 'text/csv', size: '0' })
    const outside = await read(em, token, 'reports', 'monthly/a.csv')
    assert.equal(outside.status, 403)
    assert.match(outside.body.error.message, /storage\.objects\.get/)
    assert.equal((await read(em, token, 'payroll', 'daily/a.csv')).status, 403)
    assert.equal((await read(em, source, 'payroll', 'daily/a.csv')).status, 200, 'the source token is not bounded')
    // A rule without a condition: the whole bucket; a role that cannot read objects: nothing.
    const whole = (await downscope(em, source, boundary(rule()))).body.access_token
    assert.equal((await read(em, whole, 'reports', 'monthly/a.csv')).status, 200)
    const lister = (await downscope(em, source, boundary(rule({ availablePermissions: ['inRole:roles/storage.legacyBucketReader'] })))).body.access_token
    assert.equal((await read(em, lister, 'reports', 'daily/a.csv')).status, 403)
  })

  test('refused: no or malformed options (invalid_request), an unknown or expired subject token (invalid_grant)', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const source = await sourceToken(em)
    const badRequests = [undefined, 'not json', {}, boundary(), boundary(...Array(11).fill(rule())), boundary(rule({ availablePermissions: [] })), boundary(rule({ availablePermissions: ['roles/storage.objectViewer'] })), boundary({ availablePermissions: ['inRole:roles/storage.objectViewer'] })]
    for (const options of badRequests) {
      const res = await downscope(em, source, options)
      assert.deepEqual([res.status, res.body.error, res.verdict.reason], [400, 'invalid_request', 'bad-access-boundary'], JSON.stringify(options))
    }
    assert.equal((await downscope(em, 'ya29.not-issued', boundary(rule()))).body.error, 'invalid_grant')
    em.googleTokens.get(source).expiresAt = em.now() - 1
    const expired = await downscope(em, source, boundary(rule()))
    assert.deepEqual([expired.status, expired.body.error, expired.verdict.reason], [400, 'invalid_grant', 'bad-subject-token'])
  })

  test('objects.get: no or unknown bearer 401, no storage scope 403, a condition the emulator cannot evaluate 500', TEST_TIMEOUT, async () => {
    const { em } = ctx
    assert.equal((await read(em, null, 'reports', 'a.csv')).status, 401)
    assert.equal((await read(em, 'ya29.not-issued', 'reports', 'a.csv')).status, 401)
    const bigQueryOnly = (await exchange(em, encodeSubjectToken(signedRequest(em)), { scope: 'https://www.googleapis.com/auth/bigquery' })).body.access_token
    assert.equal((await read(em, bigQueryOnly, 'reports', 'a.csv')).status, 403)
    const source = await sourceToken(em)
    const token = (await downscope(em, source, boundary(rule({ availabilityCondition: { expression: "resource.name.endsWith('.csv')" } })))).body.access_token
    const res = await read(em, token, 'reports', 'a.csv')
    assert.equal(res.status, 500)
    assert.match(res.body.message, /evaluates only resource\.name\.startsWith/)
  })
})

/** A subject token signed by the reference signer with fresh emulator-issued credentials. */
function signedRequest(em, options = {}) {
  const credentials = options.credentials ?? em.issueAwsCredentials()
  return signGetCallerIdentity({ credentials, region: em.config.region, audience: em.config.audience, ...options })
}

describe('Google STS SigV4 oracle', () => {
  const ctx = useEmulator()

  test('accepts the token google-auth-library builds', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const subjectToken = await awsClient(em, ecsFetchSupplier(em), { impersonate: false }).retrieveSubjectToken()
    const { status, body, verdict } = await exchange(em, subjectToken)
    assert.equal(status, 200, JSON.stringify(body))
    assert.match(body.access_token, /^ya29\.sts\./)
    assert.deepEqual(body, { access_token: body.access_token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 })
    assert.equal(verdict.reason, 'ok')
  })

  test('accepts other libraries\' shapes: signed target resource, Go casing and encoding, "/" before "?"', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const variants = [
      { style: 'go' },
      { style: 'node', signTargetResource: true },
      { style: 'node', slashBeforeQuery: true, body: '' },
    ]
    for (const variant of variants) {
      const { status, verdict } = await exchange(em, encodeSubjectToken(signedRequest(em, variant), variant.style))
      assert.equal(status, 200, `${JSON.stringify(variant)}: ${verdict.reason} ${verdict.message}`)
    }
    assert.deepEqual(em.requests[0].verdict.signedHeaders, ['host', 'x-amz-date', 'x-amz-security-token', 'x-goog-cloud-target-resource'])
  })

  test('accepts a registered static key without a session token', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const credentials = { accessKeyId: 'AKIAEMULATORSTATIC01', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }
    em.registerAwsKey(credentials)
    const { status, verdict } = await exchange(em, encodeSubjectToken(signedRequest(em, { credentials })))
    assert.equal(status, 200)
    assert.deepEqual(verdict.signedHeaders, ['host', 'x-amz-date'])
  })

  /** Rejection cases: [name, build(em) -> {token, params?}, expected reason, expected error]. */
  const rejections = [
    ['one character of the signature changed', (em) => ({ token: encodeSubjectToken(flipSignature(signedRequest(em))) }), 'signature-mismatch', 'invalid_grant'],
    [
      'a key the emulator never issued',
      (em) => ({ token: encodeSubjectToken(signedRequest(em, { credentials: { accessKeyId: 'ASIAUNKNOWNUNKNOWN00', secretAccessKey: 'x', token: 't' } })) }),
      'unknown-access-key',
      'invalid_grant',
    ],
    ['a wrong audience parameter', (em) => ({ token: encodeSubjectToken(signedRequest(em)), params: { audience: `${em.config.audience}-other` } }), 'audience-mismatch', 'invalid_target'],
    ['a token bound to another audience', (em) => ({ token: encodeSubjectToken(signedRequest(em, { audience: '//iam.googleapis.com/other' })) }), 'target-resource-mismatch', 'invalid_grant'],
    ['an x-amz-date 20 minutes old', (em) => ({ token: encodeSubjectToken(signedRequest(em, { date: new Date(Date.now() - 20 * 60_000) })) }), 'stale-date', 'invalid_grant'],
    ['a tampered signed header (x-amz-date moved by 1 s)', (em) => ({ token: encodeSubjectToken(shiftAmzDate(signedRequest(em))) }), 'signature-mismatch', 'invalid_grant'],
    ['a swapped session token', (em) => ({ token: encodeSubjectToken(withHeader(signedRequest(em), 'x-amz-security-token', em.issueAwsCredentials().token)) }), 'security-token-mismatch', 'invalid_grant'],
    ['a URL other than regional GetCallerIdentity', (em) => ({ token: encodeSubjectToken({ ...signedRequest(em), url: 'https://sts.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15' }) }), 'bad-url', 'invalid_grant'],
    ['a subject token that is not JSON', () => ({ token: 'not-json' }), 'malformed-subject-token', 'invalid_grant'],
    ['a wrong subject_token_type', (em) => ({ token: encodeSubjectToken(signedRequest(em)), params: { subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' } }), 'bad-subject-token-type', 'invalid_request'],
  ]
  for (const [name, build, reason, error] of rejections) {
    test(`rejects ${name}`, TEST_TIMEOUT, async () => {
      const { token, params } = build(ctx.em)
      const { status, body, verdict } = await exchange(ctx.em, token, params)
      assert.equal(status, 400)
      assert.equal(body.error, error)
      assert.equal(verdict.ok, false)
      assert.equal(verdict.reason, reason, verdict.message)
      if (reason === 'signature-mismatch') assert.match(body.error_description, /The AWS request signature does not match/)
    })
  }

  test('rejects expired credentials and honours clockSkewMs', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const credentials = { accessKeyId: 'ASIAEXPIREDEXPIRED00', secretAccessKey: 's', token: 't' }
    em.registerAwsKey({ ...credentials, expiresAt: Date.now() - 1000 })
    assert.equal((await exchange(em, encodeSubjectToken(signedRequest(em, { credentials })))).verdict.reason, 'expired-credentials')
    em.config.clockSkewMs = 20 * 60_000
    assert.equal((await exchange(em, encodeSubjectToken(signedRequest(em)))).verdict.reason, 'stale-date')
  })

  test('allowedPrincipals acts as an attribute condition', TEST_TIMEOUT, async () => {
    const { em } = ctx
    em.config.allowedPrincipals = ['arn:aws:sts::123456789012:assumed-role/some-other-role/']
    const { body, verdict } = await exchange(em, encodeSubjectToken(signedRequest(em)))
    assert.equal(verdict.reason, 'principal-not-allowed')
    assert.match(body.error_description, /attribute condition/)
  })
})

function flipSignature(request) {
  const auth = request.headers.find((h) => h.key === 'authorization').value
  const last = auth.at(-1)
  return withHeader(request, 'authorization', auth.slice(0, -1) + (last === '0' ? '1' : '0'))
}

function shiftAmzDate(request) {
  const value = request.headers.find((h) => h.key === 'x-amz-date').value
  const seconds = Number(value.slice(13, 15))
  const shifted = `${value.slice(0, 13)}${String(seconds === 59 ? 58 : seconds + 1).padStart(2, '0')}Z`
  return withHeader(request, 'x-amz-date', shifted)
}

describe('AWS credential endpoints', () => {
  const ctx = useEmulator()

  test('container route: documented JSON, Expiration format, recorded in em.issued', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const { status, headers, body } = await getJson(`${em.url}/v2/credentials/6f3c0b5e-0000-4000-8000-000000000000`)
    assert.equal(status, 200)
    assert.equal(headers.get('content-type'), 'application/json')
    assert.deepEqual(Object.keys(body), ['RoleArn', 'AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration', 'AccountId'])
    assert.match(body.AccessKeyId, /^ASIA[A-Z2-7]{16}$/)
    assert.match(body.Expiration, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
    const issued = em.issued.get(body.AccessKeyId)
    assert.equal(issued.secretAccessKey, body.SecretAccessKey)
    assert.equal(issued.token, body.Token)
    assert.equal(issued.expiration, body.Expiration)
  })

  test('container route enforces containerAuthToken exactly (EKS Pod Identity agent)', TEST_TIMEOUT, async () => {
    const { em } = ctx
    em.config.containerAuthToken = POD_IDENTITY_TOKEN
    const url = `${em.url}/v1/credentials`
    for (const headers of [{}, { authorization: `${POD_IDENTITY_TOKEN}x` }, { authorization: `Bearer ${POD_IDENTITY_TOKEN}` }]) {
      const res = await getJson(url, { headers })
      assert.equal(res.status, 400)
      assert.equal(res.body.code, 'InvalidToken')
    }
    assert.equal((await getJson(url, { headers: { authorization: POD_IDENTITY_TOKEN } })).status, 200)
  })

  test('fixed credentials are served when configured', TEST_TIMEOUT, async () => {
    const { em } = ctx
    em.config.credentials = { accessKeyId: 'ASIAFIXEDFIXEDFIXED0', secretAccessKey: 'fixed-secret', token: 'fixed-token' }
    const { body } = await getJson(`${em.url}/v1/credentials`)
    assert.equal(body.AccessKeyId, 'ASIAFIXEDFIXEDFIXED0')
    assert.equal(em.issued.get('ASIAFIXEDFIXEDFIXED0').token, 'fixed-token')
  })

  test('IMDSv2 requires a session token', TEST_TIMEOUT, async () => {
    const { em } = ctx
    const md = (path, token) => fetch(`${em.url}/latest/meta-data/${path}`, { headers: token ? { 'x-aws-ec2-metadata-token': token } : {} })
    assert.equal((await md('iam/security-credentials/')).status, 401, 'IMDSv1 request')
    assert.equal((await fetch(`${em.url}/latest/api/token`, { method: 'PUT' })).status, 400, 'PUT without TTL header')
    assert.equal((await md('placement/region', 'forged-token')).status, 401)
    const token = await (await fetch(`${em.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } })).text()
    const role = await (await md('iam/security-credentials/', token)).text()
    assert.equal(role, 'wif-demo-role')
    const creds = await (await md(`iam/security-credentials/${role}`, token)).json()
    assert.equal(creds.Code, 'Success')
    assert.equal(creds.Type, 'AWS-HMAC')
    assert.ok(em.issued.has(creds.AccessKeyId))
    assert.equal(await (await md('placement/region', token)).text(), 'us-east-1')
    assert.equal(await (await md('placement/availability-zone', token)).text(), 'us-east-1a')
    assert.equal((await (await md('iam/info', token)).json()).Code, 'Success')
  })

  test('ECS task metadata v4 reports the region in the task ARN and the availability zone', TEST_TIMEOUT, async () => {
    const { em } = ctx
    em.config.region = 'eu-west-3'
    const task = (await getJson(`${em.url}/ecs-metadata/v4/abc/task`)).body
    assert.equal(task.TaskARN, 'arn:aws:ecs:eu-west-3:123456789012:task/demo/0123456789abcdef')
    assert.equal(task.Cluster, 'arn:aws:ecs:eu-west-3:123456789012:cluster/demo')
    assert.equal(task.AvailabilityZone, 'eu-west-3a')
    assert.equal(task.LaunchType, 'FARGATE')
    assert.equal((await getJson(`${em.url}/ecs-metadata/v4/abc`)).body.Name, 'app')
  })

  describe('AWS STS AssumeRoleWithWebIdentity via the AWS SDK for JavaScript (AWS_ENDPOINT_URL_STS)', () => {
    let dir
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'aws-wif-emulator-'))
      writeFileSync(join(dir, 'token'), 'projected-sa-jwt')
    })
    afterEach(() => {
      for (const key of ['AWS_ENDPOINT_URL_STS', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN', 'AWS_REGION']) delete process.env[key]
    })
    after(() => rmSync(dir, { recursive: true, force: true }))

    const irsa = (em) => {
      Object.assign(process.env, {
        AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts`,
        AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, 'token'),
        AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/irsa-role',
        AWS_REGION: 'us-east-1',
      })
      return fromTokenFile({ roleSessionName: 'irsa-session' })()
    }

    test('issues credentials the Google STS then accepts', TEST_TIMEOUT, async () => {
      const { em } = ctx
      em.config.webIdentityToken = 'projected-sa-jwt'
      const creds = await irsa(em)
      const issued = em.issued.get(creds.accessKeyId)
      assert.equal(issued.token, creds.sessionToken)
      assert.equal(issued.arn, 'arn:aws:sts::123456789012:assumed-role/irsa-role/irsa-session')
      const form = new URLSearchParams(em.requests.find((r) => r.route === 'awsSts').body)
      assert.equal(form.get('Action'), 'AssumeRoleWithWebIdentity')
      assert.equal(form.get('WebIdentityToken'), 'projected-sa-jwt')
      const token = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, token: creds.sessionToken }
      const { verdict } = await exchange(em, encodeSubjectToken(signedRequest(em, { credentials: token })))
      assert.equal(verdict.reason, 'ok')
    })

    test('a wrong web identity token is refused with InvalidIdentityToken', TEST_TIMEOUT, async () => {
      const { em } = ctx
      em.config.webIdentityToken = 'another-jwt'
      await assert.rejects(irsa(em), (err) => err.name === 'InvalidIdentityToken' || /InvalidIdentityToken/.test(String(err)))
      assert.equal(em.count('awsSts'), 1)
    })

    test('a form without RoleArn is a 400 XML ErrorResponse', TEST_TIMEOUT, async () => {
      const { em } = ctx
      const body = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', RoleSessionName: 's', WebIdentityToken: 'jwt', Version: '2011-06-15' })
      const res = await fetch(`${em.url}/aws-sts/`, { method: 'POST', body })
      assert.equal(res.status, 400)
      assert.equal(res.headers.get('content-type'), 'text/xml')
      assert.match(await res.text(), /<ErrorResponse[^>]*><Error><Type>Sender<\/Type><Code>ValidationError<\/Code>/)
    })
  })
})

describe('faults', () => {
  const ctx = useEmulator()
  const credentialsUrl = () => `${ctx.em.url}/v1/credentials`

  test('status faults are consumed in order; setAlways persists until cleared', TEST_TIMEOUT, async () => {
    const { em } = ctx
    em.fault('container', { status: 500 }, { status: 503, body: 'busy', contentType: 'text/plain' })
    const first = await fetch(credentialsUrl())
    assert.equal(first.status, 500)
    assert.equal((await first.json()).code, 'EmulatedFault')
    const second = await fetch(credentialsUrl())
    assert.deepEqual([second.status, await second.text()], [503, 'busy'])
    assert.equal((await fetch(credentialsUrl())).status, 200)
    em.setAlways('container', { status: 429 })
    assert.equal((await fetch(credentialsUrl())).status, 429)
    assert.equal((await fetch(credentialsUrl())).status, 429)
    em.setAlways('container', null)
    assert.equal((await fetch(credentialsUrl())).status, 200)
    assert.throws(() => em.fault('no-such-route', { status: 500 }), /unknown route/)
  })

  test('delayMs delays the normal answer', TEST_TIMEOUT, async () => {
    ctx.em.fault('container', { delayMs: 150 })
    const started = performance.now()
    const res = await fetch(credentialsUrl())
    assert.equal(res.status, 200)
    assert.ok(performance.now() - started >= 145, 'answered too early')
  })

  test('hang never answers (the client gives up)', TEST_TIMEOUT, async () => {
    const { em } = ctx
    em.fault('container', { hang: true })
    const abort = new AbortController()
    const pending = fetch(credentialsUrl(), { signal: abort.signal })
    await em.waitFor('container')
    abort.abort()
    await assert.rejects(pending, { name: 'AbortError' })
    assert.equal(em.requests[0].status, undefined)
  })

  test('reset destroys the connection', TEST_TIMEOUT, async () => {
    ctx.em.fault('container', { reset: true })
    await assert.rejects(fetch(credentialsUrl()), TypeError)
    assert.equal(ctx.em.requests[0].status, 'reset')
  })

  test('truncate sends a well-framed partial JSON body', TEST_TIMEOUT, async () => {
    ctx.em.fault('container', { truncate: true })
    const res = await fetch(credentialsUrl())
    assert.equal(res.status, 200)
    const body = await res.text()
    assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(body))
    assert.ok(body.startsWith('{"RoleArn":'))
    assert.throws(() => JSON.parse(body), SyntaxError)
  })

  test('unknown routes answer 404 JSON, wrong methods 405', TEST_TIMEOUT, async () => {
    const unknown = await getJson(`${ctx.em.url}/nope`)
    assert.equal(unknown.status, 404)
    assert.equal(ctx.em.requests[0].route, 'unknown')
    assert.equal((await fetch(`${ctx.em.url}/v1/token`)).status, 405)
    assert.equal(ctx.em.count('sts'), 1)
  })
})

describe('lifecycle', () => {
  test('several listeners share one state', TEST_TIMEOUT, async () => {
    const em = await startEmulator({ listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 }] })
    try {
      assert.equal(em.urls.length, 2)
      assert.equal(em.url, em.urls[0])
      const { body } = await getJson(`${em.urls[1]}/v1/credentials`)
      assert.ok(em.issued.has(body.AccessKeyId))
      assert.equal(em.count('container'), 1)
    } finally {
      await em.close()
    }
  })

  test('em.close() leaves no handles: a process with keep-alive and hanging requests exits by itself', TEST_TIMEOUT, async () => {
    const { code, stdout } = await runNode([here('fixtures/emulator-close.mjs')], 15_000)
    assert.equal(code, 0)
    assert.match(stdout, /^closed \(hanging request: aborted by close\)/)
  })

  test('cli.mjs prints its URL, serves, and exits 0 on SIGTERM', TEST_TIMEOUT, async () => {
    const child = spawn(process.execPath, [here('emulator/cli.mjs'), '--config', '{"region":"ap-southeast-2"}'], { env: hermeticEnv(), stdio: ['ignore', 'pipe', 'inherit'] })
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    try {
      const [line] = await once(createInterface({ input: child.stdout }), 'line')
      const { url } = JSON.parse(line)
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const token = await (await fetch(`${url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text()
      const region = await (await fetch(`${url}/latest/meta-data/placement/region`, { headers: { 'x-aws-ec2-metadata-token': token } })).text()
      assert.equal(region, 'ap-southeast-2')
      child.kill('SIGTERM')
      const [code] = await once(child, 'exit')
      assert.equal(code, 0)
    } finally {
      clearTimeout(killer)
    }
  })
})

/** Run node with a hermetic environment; resolves {code, stdout, stderr} or kills after timeoutMs. */
function runNode(args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: hermeticEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code) => {
      clearTimeout(killer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('link-local addresses in a private network namespace', () => {
  const unavailable = netnsUnavailableReason()

  test('assertIsolated() throws outside a private namespace', () => {
    assert.throws(() => assertIsolated(), /not isolated/)
  })

  test(
    'emulator on 169.254.170.2, 169.254.170.23 and 169.254.169.254 serves raw HTTP and the AWS SDK defaults',
    { timeout: 40_000, skip: unavailable ? `network namespace unavailable: ${unavailable}` : false },
    async () => {
      const { code, stdout, stderr, timedOut } = await runInNetns(here('fixtures/netns-emulator.mjs'), { timeoutMs: 30_000 })
      assert.equal(timedOut, false)
      assert.equal(code, 0, stderr)
      const result = JSON.parse(stdout)
      assert.deepEqual(result.listening, ['http://169.254.170.2:80', 'http://169.254.170.23:80', 'http://169.254.169.254:80'])
      for (const key of ['ecsRaw', 'imdsRaw', 'eksRaw']) assert.deepEqual(result[key], { status: 200, issued: true }, key)
      for (const key of ['ecsSdk', 'imdsSdk', 'eksSdk']) assert.deepEqual(result[key], { issued: true }, key)
      assert.equal(result.eksRawNoToken, 400)
      assert.ok(result.routes.includes('container GET 169.254.170.23:80 200'))
      assert.ok(result.routes.includes('imds PUT 169.254.169.254:80 200'))
    },
  )
})

test('the google-auth-library under test is the one CI asked for', async () => {
  const { galVersion } = await import('./stack.mjs')
  const expected = process.env.WIF_TEST_EXPECT_GAL_MAJOR
  if (expected) assert.equal(galVersion.split('.')[0], expected, `google-auth-library ${galVersion} on Node ${process.version}`)
  else assert.match(galVersion, /^\d+\.\d+\.\d+/)
})
