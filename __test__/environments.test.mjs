// The reference flow (google-auth-library AwsClient + @google-cloud/bigquery, real libraries) with
// ContainerAwsCredentialsSupplier in each AWS environment it claims to support.
//
// Every scenario runs in its own child process (fixtures/reference-flow.mjs), because the supplier
// caches process-wide per environment. Loopback scenarios talk to an emulator in this process on
// 127.0.0.1; the scenarios that need the real link-local addresses (169.254.170.2, 169.254.170.23,
// 169.254.169.254) run the fixture, and its own emulator, inside a private network namespace.
// The Google STS emulator verifies each subject token's SigV4 signature with @smithy/signature-v4.
//
// Run: node --test __test__/environments.test.mjs

import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, GREETING, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { netnsUnavailableReason, runInNetns } from './netns.mjs'
import { here, runNode, summariseRequests } from './support.mjs'

makeProcessHermetic()

const FIXTURE = here('fixtures/reference-flow.mjs')
const TEST_TIMEOUT = { timeout: 45_000 }
const SA = DEFAULT_CONFIG.serviceAccount
const EXPECTED_ROWS = [{ greeting: GREETING, principal: SA, n: 42 }]
const ROLE_ARN = 'arn:aws:iam::123456789012:role/irsa-role'
const NODE_MAJOR = Number(process.versions.node.split('.')[0])

let dir
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'aws-wif-env-'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

/** Write a file in the per-run temp directory; returns its path. */
function tempFile(name, content) {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

/** Run the fixture in a child with a hermetic env plus `vars`; asserts it exited cleanly. */
async function runScenario(vars, scenario) {
  const env = hermeticEnv({ ...vars, WIF_SCENARIO: JSON.stringify(scenario) })
  const run = await runNode(FIXTURE, { env, timeoutMs: 40_000 })
  assert.equal(run.timedOut, false, `fixture timed out\n${run.stderr}`)
  assert.equal(run.code, 0, run.stderr)
  assert.ok(run.result, `no JSON result\nstdout: ${run.stdout}\nstderr: ${run.stderr}`)
  assert.equal(run.result.fatal, undefined, JSON.stringify(run.result.fatal))
  return run.result
}

/** The flow succeeded: an impersonated token and the emulator's row. */
function assertFlowOk(flow) {
  assert.equal(flow.error, undefined, JSON.stringify(flow.error))
  assert.match(flow.token, /^ya29\.sa\./)
  assert.deepEqual(flow.rows, EXPECTED_ROWS)
}

/**
 * The Google side of one successful flow in a summarised request log: exactly one STS exchange whose
 * oracle verdict is ok, signed for `region` with a key from `issuedBy`, then IAM and BigQuery.
 */
function assertGoogleSide(log, { region, accessKeyId }) {
  const sts = log.filter((r) => r.route === 'sts')
  assert.equal(sts.length, 1, 'one STS exchange')
  assert.equal(sts[0].status, 200)
  assert.equal(sts[0].verdict.ok, true, `${sts[0].verdict.reason}`)
  assert.equal(sts[0].verdict.reason, 'ok')
  assert.equal(sts[0].subjectTokenRegion, region, 'region of the signed GetCallerIdentity URL')
  assert.equal(sts[0].verdict.region, region, 'region of the SigV4 credential scope')
  if (accessKeyId) assert.equal(sts[0].verdict.accessKeyId, accessKeyId)
  assert.equal(log.filter((r) => r.route === 'iam' && r.status === 200).length, 1)
  const bq = log.filter((r) => r.route === 'bigquery')
  assert.ok(bq.length >= 1 && bq.every((r) => r.status === 200), JSON.stringify(bq))
  return sts[0]
}

const only = (log, route) => log.filter((r) => r.route === route)

describe('loopback environments (emulator on 127.0.0.1)', () => {
  let em
  before(async () => {
    em = await startEmulator()
  })
  beforeEach(() => {
    em.reset()
    em.config = { ...DEFAULT_CONFIG }
  })
  after(() => em?.close())

  const log = () => summariseRequests(em.requests)

  test('static environment keys with AWS_REGION', TEST_TIMEOUT, async () => {
    const key = { accessKeyId: 'AKIAENVSTATICKEY0001', secretAccessKey: 'env/static/secret/key/EXAMPLE0000000000000', token: 'env-session-token-EXAMPLE' }
    em.registerAwsKey({ ...key, arn: 'arn:aws:sts::123456789012:assumed-role/env-role/static' })
    const result = await runScenario(
      { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, AWS_SESSION_TOKEN: key.token, AWS_REGION: 'ap-northeast-1' },
      { emulatorUrl: em.url },
    )
    assertFlowOk(result.flow)
    assert.equal(result.region, 'ap-northeast-1')
    assert.deepEqual(result.credentials, { accessKeyId: key.accessKeyId })
    const sts = assertGoogleSide(log(), { region: 'ap-northeast-1', accessKeyId: key.accessKeyId })
    assert.equal(sts.verdict.arn, 'arn:aws:sts::123456789012:assumed-role/env-role/static')
    for (const route of ['container', 'imds', 'awsSts', 'taskMetadata']) assert.equal(em.count(route), 0, route)
  })

  describe('EKS IRSA (web identity through AWS STS AssumeRoleWithWebIdentity)', () => {
    const irsaVars = (tokenFile) => ({
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_ARN: ROLE_ARN,
      AWS_ROLE_SESSION_NAME: 'irsa-session',
      AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts`,
      AWS_REGION: 'eu-central-1',
      // Configured but must not be used: web identity comes first, and a failure must not fall through.
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`,
    })

    test('the projected token is exchanged once and the flow succeeds', TEST_TIMEOUT, async () => {
      em.config.webIdentityToken = 'projected-sa-jwt-EXAMPLE'
      const result = await runScenario(irsaVars(tempFile('irsa-token', 'projected-sa-jwt-EXAMPLE')), { emulatorUrl: em.url })
      assertFlowOk(result.flow)
      assert.equal(result.region, 'eu-central-1')
      const aws = only(log(), 'awsSts')
      assert.equal(aws.length, 1, 'AssumeRoleWithWebIdentity exactly once')
      assert.equal(aws[0].status, 200)
      assert.equal(aws[0].awsStsForm.Action, 'AssumeRoleWithWebIdentity')
      assert.equal(aws[0].awsStsForm.RoleArn, ROLE_ARN)
      assert.equal(aws[0].awsStsForm.RoleSessionName, 'irsa-session')
      assert.equal(aws[0].awsStsForm.WebIdentityToken, 'projected-sa-jwt-EXAMPLE')
      assert.equal(em.issued.get(result.credentials.accessKeyId)?.source, 'web-identity')
      const sts = assertGoogleSide(log(), { region: 'eu-central-1', accessKeyId: result.credentials.accessKeyId })
      assert.equal(sts.verdict.arn, 'arn:aws:sts::123456789012:assumed-role/irsa-role/irsa-session')
      assert.equal(em.count('container'), 0)
    })

    test('a rejected web identity token rejects with CREDENTIALS_ENDPOINT_ERROR, no fall-through', TEST_TIMEOUT, async () => {
      em.config.webIdentityToken = 'the-token-aws-expects'
      const result = await runScenario(irsaVars(tempFile('irsa-wrong', 'some-other-token')), { emulatorUrl: em.url })
      for (const error of [result.flow.error, result.credentials.error]) {
        assert.ok(error, 'expected an error')
        assert.equal(error.isError, true)
        assert.equal(error.code, 'CREDENTIALS_ENDPOINT_ERROR', error.message)
        assert.equal(typeof error.retryable, 'boolean')
        assert.match(error.message, /web identity/i)
      }
      assert.match(result.credentials.error.message, /InvalidIdentityToken/)
      // One AssumeRoleWithWebIdentity per call (the flow's, then the direct call's): a 400 is not
      // retried and the failure is not cached.
      const aws = only(log(), 'awsSts')
      assert.deepEqual(aws.map((r) => r.status), [400, 400])
      assert.equal(em.count('container'), 0, 'must not fall through to the container endpoint')
      assert.equal(em.count('sts'), 0, 'no subject token may be sent')
    })

    test('a token file that is missing: CONFIG_INVALID naming the variable, nothing sent, no fall-through', TEST_TIMEOUT, async () => {
      const result = await runScenario(irsaVars(join(dir, 'no-such-token')), { emulatorUrl: em.url })
      const error = result.credentials.error
      assert.ok(error, 'expected an error')
      assert.equal(error.code, 'CONFIG_INVALID', error.message)
      assert.match(error.message, /AWS_WEB_IDENTITY_TOKEN_FILE/)
      assert.deepEqual([em.count('awsSts'), em.count('container'), em.count('sts')], [0, 0, 0])
    })

    // The AWS STS client (aws-sdk-sts) is given the crate's own HTTP layer (src/aws/sdk/): the same body
    // cap and timeouts as every other request, with aws-config's retries on top.
    test('an AWS STS answer over 64 KiB is refused, not parsed', TEST_TIMEOUT, async () => {
      em.config.webIdentityToken = 'projected-sa-jwt-EXAMPLE'
      const huge = `<AssumeRoleWithWebIdentityResponse>${' '.repeat(70 * 1024)}</AssumeRoleWithWebIdentityResponse>`
      em.setAlways('awsSts', { status: 200, contentType: 'text/xml', body: huge })
      try {
        const result = await runScenario(irsaVars(tempFile('irsa-huge', 'projected-sa-jwt-EXAMPLE')), { emulatorUrl: em.url })
        const error = result.credentials.error
        assert.ok(error, 'expected an error')
        assert.equal(error.code, 'CREDENTIALS_ENDPOINT_ERROR', error.message)
        assert.match(error.message, /web identity/i)
        assert.match(error.message, /larger than 65536 bytes/)
        assert.ok(only(log(), 'awsSts').length >= 1)
        assert.equal(em.count('container'), 0, 'must not fall through to the container endpoint')
        assert.equal(em.count('sts'), 0, 'no subject token may be sent')
      } finally {
        em.setAlways('awsSts', null)
      }
    })

    test('a 503 from AWS STS is retried and the next answer is used', TEST_TIMEOUT, async () => {
      em.config.webIdentityToken = 'projected-sa-jwt-EXAMPLE'
      em.fault('awsSts', { status: 503, contentType: 'text/xml', body: '<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>' })
      const result = await runScenario(irsaVars(tempFile('irsa-503', 'projected-sa-jwt-EXAMPLE')), { emulatorUrl: em.url })
      assertFlowOk(result.flow)
      assert.equal(em.issued.get(result.credentials.accessKeyId)?.source, 'web-identity')
      assert.deepEqual(only(log(), 'awsSts').map((r) => r.status), [503, 200])
    })
  })

  describe('shared config profile with role_arn + source_profile (AWS STS AssumeRole, SigV4-signed)', () => {
    const ROLE = 'arn:aws:iam::123456789012:role/profile-role'
    const base = { accessKeyId: 'AKIAPROFILEBASE00001', secretAccessKey: 'profile/base/secret/key/EXAMPLE00000000000' }
    const profileVars = (secret) => ({
      AWS_CONFIG_FILE: tempFile('profile-config', `[profile app]\nrole_arn = ${ROLE}\nsource_profile = base\nrole_session_name = profile-session\n`),
      AWS_SHARED_CREDENTIALS_FILE: tempFile('profile-credentials', `[base]\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${secret}\n`),
      AWS_PROFILE: 'app',
      AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts`,
      AWS_REGION: 'eu-west-1',
    })

    // aws-config signs the AssumeRole call; it goes out through the crate's HTTP layer
    // (src/aws/sdk/), and the emulator checks the signature with @smithy/signature-v4.
    test('the source profile signs AssumeRole, the signature verifies, the role credentials complete the flow', TEST_TIMEOUT, async () => {
      em.registerAwsKey({ ...base, arn: 'arn:aws:iam::123456789012:user/profile-base' })
      const result = await runScenario(profileVars(base.secretAccessKey), { emulatorUrl: em.url })
      assertFlowOk(result.flow)
      const aws = only(log(), 'awsSts')
      assert.equal(aws.length, 1, 'AssumeRole exactly once')
      assert.equal(aws[0].status, 200)
      assert.equal(aws[0].awsStsForm.Action, 'AssumeRole')
      assert.equal(aws[0].awsStsForm.RoleArn, ROLE)
      assert.equal(aws[0].awsStsForm.RoleSessionName, 'profile-session')
      assert.deepEqual([aws[0].verdict.ok, aws[0].verdict.reason, aws[0].verdict.accessKeyId], [true, 'ok', base.accessKeyId])
      assert.equal(em.issued.get(result.credentials.accessKeyId)?.source, 'assume-role')
      const sts = assertGoogleSide(log(), { region: 'eu-west-1', accessKeyId: result.credentials.accessKeyId })
      assert.equal(sts.verdict.arn, 'arn:aws:sts::123456789012:assumed-role/profile-role/profile-session')
    })

    test('a wrong source secret: the signature does not verify, a coded error, no subject token sent', TEST_TIMEOUT, async () => {
      em.registerAwsKey({ ...base, arn: 'arn:aws:iam::123456789012:user/profile-base' })
      const wrongSecret = 'not/the/registered/secret/EXAMPLE000000000'
      const result = await runScenario(profileVars(wrongSecret), { emulatorUrl: em.url })
      const error = result.credentials.error
      assert.ok(error, 'expected an error')
      for (const e of [error, result.flow.error]) assert.ok(!JSON.stringify(e).includes(wrongSecret), 'the source secret appears in the error')
      assert.equal(error.code, 'CREDENTIALS_ENDPOINT_ERROR', error.message)
      assert.match(error.message, /SignatureDoesNotMatch/)
      const aws = only(log(), 'awsSts')
      assert.ok(aws.length >= 1)
      for (const r of aws) assert.deepEqual([r.status, r.verdict.reason], [403, 'signature-mismatch'])
      assert.equal(em.count('sts'), 0, 'no subject token may be sent')
    })
  })

  // A laptop profile whose role chain starts from a credential_process helper (aws-vault, granted,
  // saml2aws...): the command's credentials sign the first AssumeRole (src/aws/sts.rs),
  // as the JavaScript SDK's ini provider does; aws-config alone refuses such a chain.
  describe('role_arn + source_profile chain ending in credential_process (each AssumeRole SigV4-signed)', () => {
    const OUTER = 'arn:aws:iam::123456789012:role/outer-role'
    const INNER = 'arn:aws:iam::123456789012:role/inner-role'
    const base = { accessKeyId: 'ASIAPROCESSBASE00001', secretAccessKey: 'process/base/secret/key/EXAMPLE00000000000', token: 'process-base-session-token' }
    const helper = (name, body) => {
      const path = tempFile(name, `#!/bin/sh\n${body}\n`)
      chmodSync(path, 0o755)
      return path
    }
    const printsBase = () =>
      helper(
        'cred-helper.sh',
        `echo '${JSON.stringify({ Version: 1, AccessKeyId: base.accessKeyId, SecretAccessKey: base.secretAccessKey, SessionToken: base.token, Expiration: '2099-01-01T00:00:00Z' })}'`,
      )
    const chainVars = (config) => ({
      AWS_CONFIG_FILE: tempFile('chain-config', config),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_PROFILE: 'app',
      AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts`,
      AWS_REGION: 'eu-west-1',
    })
    const registerBase = () => em.registerAwsKey({ ...base, arn: 'arn:aws:sts::123456789012:assumed-role/helper-role/laptop' })

    test('one role: the credentials the command prints sign AssumeRole, the role credentials complete the flow', TEST_TIMEOUT, async () => {
      registerBase()
      const config = `[profile app]\nrole_arn = ${OUTER}\nsource_profile = base\nrole_session_name = laptop-session\n\n[profile base]\ncredential_process = ${printsBase()}\n`
      const result = await runScenario(chainVars(config), { emulatorUrl: em.url })
      assertFlowOk(result.flow)
      const aws = only(log(), 'awsSts')
      assert.equal(aws.length, 1, 'AssumeRole exactly once')
      assert.deepEqual([aws[0].status, aws[0].awsStsForm.Action, aws[0].awsStsForm.RoleArn, aws[0].awsStsForm.RoleSessionName], [200, 'AssumeRole', OUTER, 'laptop-session'])
      assert.deepEqual([aws[0].verdict.ok, aws[0].verdict.reason, aws[0].verdict.accessKeyId], [true, 'ok', base.accessKeyId])
      assert.equal(aws[0].verdict.region, 'eu-west-1')
      assert.equal(em.issued.get(result.credentials.accessKeyId)?.source, 'assume-role')
      const sts = assertGoogleSide(log(), { region: 'eu-west-1', accessKeyId: result.credentials.accessKeyId })
      assert.equal(sts.verdict.arn, 'arn:aws:sts::123456789012:assumed-role/outer-role/laptop-session')
    })

    test('two roles: inner (with external_id and duration_seconds) then outer, each signed by the credentials before it', TEST_TIMEOUT, async () => {
      registerBase()
      const config = [
        `[profile app]\nrole_arn = ${OUTER}\nsource_profile = mid\n`,
        `[profile mid]\nrole_arn = ${INNER}\nsource_profile = base\nexternal_id = partner-external-id\nduration_seconds = 7200\n`,
        `[profile base]\ncredential_process = ${printsBase()}\n`,
      ].join('\n')
      const result = await runScenario(chainVars(config), { emulatorUrl: em.url })
      assertFlowOk(result.flow)
      const aws = only(log(), 'awsSts')
      assert.equal(aws.length, 2, JSON.stringify(aws.map((r) => r.awsStsForm)))
      assert.deepEqual([aws[0].awsStsForm.RoleArn, aws[0].awsStsForm.ExternalId, aws[0].verdict.accessKeyId], [INNER, 'partner-external-id', base.accessKeyId])
      assert.equal(aws[1].awsStsForm.RoleArn, OUTER)
      assert.equal(aws[0].awsStsForm.DurationSeconds, '7200', 'duration_seconds of the profile, as the JavaScript SDK sends it')
      assert.equal(aws[1].awsStsForm.ExternalId, undefined)
      assert.equal(aws[1].awsStsForm.DurationSeconds, '3600', 'the JavaScript SDK\'s default')
      assert.match(aws[1].awsStsForm.RoleSessionName, /^aws-sdk-js-\d+$/, 'the JavaScript SDK\'s default session name')
      for (const r of aws) assert.deepEqual([r.status, r.verdict.ok, r.verdict.reason], [200, true, 'ok'])
      const innerKey = aws[1].verdict.accessKeyId
      assert.notEqual(innerKey, base.accessKeyId)
      assert.match(em.issued.get(innerKey)?.arn ?? '', /assumed-role\/inner-role\//, 'the outer role is assumed with the credentials of the inner role')
      assert.match(em.issued.get(result.credentials.accessKeyId)?.arn ?? '', /assumed-role\/outer-role\//)
      assertGoogleSide(log(), { region: 'eu-west-1', accessKeyId: result.credentials.accessKeyId })
    })

    test('AssumeRole refused (a key AWS STS does not know): a coded error naming the profile, no secret in it', TEST_TIMEOUT, async () => {
      const unknown = helper(
        'cred-helper-unknown.sh',
        `echo '${JSON.stringify({ Version: 1, AccessKeyId: 'ASIAUNKNOWNTOSTS0001', SecretAccessKey: 'MARKER-PROCESS-SECRET', SessionToken: 'MARKER-PROCESS-TOKEN' })}'`,
      )
      const config = `[profile app]\nrole_arn = ${OUTER}\nsource_profile = base\n\n[profile base]\ncredential_process = ${unknown}\n`
      const result = await runScenario(chainVars(config), { emulatorUrl: em.url })
      const error = result.credentials.error
      assert.ok(error, 'expected an error')
      assert.equal(error.code, 'CREDENTIALS_ENDPOINT_ERROR', error.message)
      assert.match(error.message, /^profile app: /)
      assert.ok(!JSON.stringify(result).includes('MARKER-PROCESS'), 'a secret the command printed shows in the result')
      const aws = only(log(), 'awsSts')
      assert.ok(aws.length >= 1)
      for (const r of aws) assert.deepEqual([r.status, r.awsStsForm.Action, r.verdict.accessKeyId], [403, 'AssumeRole', 'ASIAUNKNOWNTOSTS0001'])
      assert.equal(em.count('sts'), 0, 'no subject token may be sent')
    })

    test('a failing command: a coded error naming its profile, no AssumeRole and no subject token sent', TEST_TIMEOUT, async () => {
      const fails = helper('cred-helper-fails.sh', 'echo MARKER-HELPER-STDERR >&2\nexit 3')
      const config = `[profile app]\nrole_arn = ${OUTER}\nsource_profile = base\n\n[profile base]\ncredential_process = ${fails}\n`
      const result = await runScenario(chainVars(config), { emulatorUrl: em.url })
      const error = result.credentials.error
      assert.ok(error, 'expected an error')
      assert.equal(error.code, 'CREDENTIALS_ENDPOINT_ERROR', error.message)
      assert.match(error.message, /profile base: credential_process exited with status 3/)
      assert.ok(!JSON.stringify(result).includes('MARKER-HELPER'), 'the stderr of the command must not show')
      assert.equal(only(log(), 'awsSts').length, 0)
      assert.equal(em.count('sts'), 0)
    })
  })

  // Profile role chains (role_arn + source_profile) are the package's own (src/aws/sts.rs)
  // whatever their base. Their spec is the stack this package replaces: each case runs the JavaScript
  // reference supplier (fromNodeProviderChain()) and ours in the same environment against the same
  // emulator, which verifies every AssumeRole signature, and compares what each sent to AWS STS:
  // the forms (session names without their timestamps), the region of each signature and the key
  // that signed it.
  describe('profile role chains: the AWS STS requests of the JavaScript SDK, side by side', { skip: NODE_MAJOR < 20 && 'the JavaScript SDK needs Node 20' }, () => {
    const base = { accessKeyId: 'AKIACHAINBASE0000001', secretAccessKey: 'chain/base/secret/key/EXAMPLE000000000000' }
    const helperBase = { accessKeyId: 'ASIACHAINHELPER00001', secretAccessKey: 'chain/helper/secret/EXAMPLE00000000000000', token: 'chain-helper-token' }
    const R = (name) => `arn:aws:iam::123456789012:role/${name}`

    /** Run one side in a child; returns {outcome, sts: the AWS STS requests it made}. */
    async function side(name, vars) {
      em.reset()
      em.registerAwsKey({ ...base, arn: 'arn:aws:iam::123456789012:user/chain-base' })
      em.registerAwsKey({ ...helperBase, arn: 'arn:aws:sts::123456789012:assumed-role/helper-role/laptop' })
      const env = hermeticEnv({ AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts`, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'), AWS_PROFILE: 'app', ...vars, CHAIN_SIDE: name })
      const run = await runNode(here('fixtures/chain-child.mjs'), { env, timeoutMs: 30_000 })
      assert.equal(run.code, 0, run.stderr)
      assert.ok(run.result, `${name}: no JSON result\n${run.stdout}\n${run.stderr}`)
      const sts = only(log(), 'awsSts').map((r) => ({
        status: r.status,
        form: { ...r.awsStsForm, ...(r.awsStsForm.RoleSessionName && { RoleSessionName: r.awsStsForm.RoleSessionName.replace(/\d{13}$/, '<ms>') }), ...(r.awsStsForm.WebIdentityToken && { WebIdentityToken: '<token>' }) },
        region: r.verdict?.region,
        signedBy: r.verdict?.accessKeyId,
        verified: r.verdict?.ok,
      }))
      if (run.result.ok) Object.assign(run.result, { arn: em.issued.get(run.result.accessKeyId)?.arn, source: em.issued.get(run.result.accessKeyId)?.source })
      return { outcome: run.result, sts, stderr: run.stderr }
    }

    /** Both sides; asserts they made the same AWS STS requests and both succeeded; returns ours. */
    async function sameAsReference(vars) {
      const reference = await side('reference', vars)
      const native = await side('native', vars)
      assert.equal(reference.outcome.ok, true, `the reference failed: ${reference.outcome.message}`)
      assert.equal(native.outcome.ok, true, `ours failed: ${native.outcome.code} ${native.outcome.message}`)
      // An AssumeRole signed by an issued key names that key, which differs per run: compare who issued it.
      const signer = (s) => s.signedBy && (em.issued.get(s.signedBy)?.arn ?? s.signedBy).replace(/\d{13}$/, '<ms>')
      const shape = (r) => r.sts.map((s) => ({ ...s, signedBy: signer(s) }))
      assert.deepEqual(shape(native), shape(reference))
      const arn = (side) => side.outcome.arn?.replace(/\d{13}$/, '<ms>')
      assert.equal(arn(native), arn(reference), 'the same role and session at the end of the chain')
      for (const s of native.sts) assert.deepEqual([s.status, s.verified ?? true], [200, true])
      return native
    }

    const config = (text) => ({ AWS_CONFIG_FILE: tempFile('chain-js-config', text) })

    test('static keys base: the role profile\'s region (ahead of AWS_REGION), duration_seconds, external_id, session name', TEST_TIMEOUT, async () => {
      const ours = await sameAsReference({
        ...config(`[profile app]\nrole_arn = ${R('app-role')}\nsource_profile = base\nregion = ap-southeast-2\nduration_seconds = 1800\nexternal_id = ext-42\nrole_session_name = laptop\n\n[profile base]\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n`),
        AWS_REGION: 'eu-west-1',
      })
      assert.equal(ours.sts.length, 1)
      assert.deepEqual(ours.sts[0].form, { Action: 'AssumeRole', Version: '2011-06-15', RoleArn: R('app-role'), RoleSessionName: 'laptop', ExternalId: 'ext-42', DurationSeconds: '1800' })
      assert.deepEqual([ours.sts[0].region, ours.sts[0].signedBy], ['ap-southeast-2', base.accessKeyId])
    })

    test('two hops from keys in the credentials file, defaults: session aws-sdk-js-<ms>, 3600 s, AWS_REGION', TEST_TIMEOUT, async () => {
      const ours = await sameAsReference({
        ...config(`[profile app]\nrole_arn = ${R('outer')}\nsource_profile = mid\n\n[profile mid]\nrole_arn = ${R('inner')}\nsource_profile = base\n`),
        AWS_SHARED_CREDENTIALS_FILE: tempFile('chain-js-credentials', `[base]\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n`),
        AWS_REGION: 'sa-east-1',
      })
      assert.deepEqual(ours.sts.map((s) => [s.form.RoleArn, s.form.RoleSessionName, s.form.DurationSeconds, s.region]), [
        [R('inner'), 'aws-sdk-js-<ms>', '3600', 'sa-east-1'],
        [R('outer'), 'aws-sdk-js-<ms>', '3600', 'sa-east-1'],
      ])
    })

    test('a profile that is its own source_profile signs with its own keys', TEST_TIMEOUT, async () => {
      const ours = await sameAsReference(config(`[profile app]\nrole_arn = ${R('self-role')}\nsource_profile = app\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n`))
      assert.deepEqual(ours.sts.map((s) => [s.form.RoleArn, s.signedBy, s.region]), [[R('self-role'), base.accessKeyId, 'us-east-1']])
    })

    test('credential_process base with the role profile\'s region', TEST_TIMEOUT, async () => {
      const helper = tempFile('chain-js-helper.sh', `#!/bin/sh\necho '${JSON.stringify({ Version: 1, AccessKeyId: helperBase.accessKeyId, SecretAccessKey: helperBase.secretAccessKey, SessionToken: helperBase.token, Expiration: '2099-01-01T00:00:00Z' })}'\n`)
      chmodSync(helper, 0o755)
      const ours = await sameAsReference({
        ...config(`[profile app]\nrole_arn = ${R('outer')}\nsource_profile = base\nregion = ca-central-1\n\n[profile base]\ncredential_process = ${helper}\n`),
        AWS_REGION: 'eu-west-1',
      })
      assert.deepEqual(ours.sts.map((s) => [s.signedBy, s.region]), [[helperBase.accessKeyId, 'ca-central-1']])
    })

    test('web identity base: AssumeRoleWithWebIdentity, then AssumeRole with its credentials', TEST_TIMEOUT, async () => {
      const token = tempFile('chain-js-web-token', 'eyJhbGciOiJSUzI1NiJ9.chain-web-identity.EXAMPLE')
      const ours = await sameAsReference({
        ...config(`[profile app]\nrole_arn = ${R('outer')}\nsource_profile = base\n\n[profile base]\nrole_arn = ${ROLE_ARN}\nweb_identity_token_file = ${token}\nrole_session_name = irsa-session\n`),
        AWS_REGION: 'eu-central-1',
      })
      assert.deepEqual(ours.sts.map((s) => s.form.Action), ['AssumeRoleWithWebIdentity', 'AssumeRole'])
      assert.equal(em.issued.get(ours.sts[1].signedBy)?.source, 'web-identity', 'signed by the web identity credentials')
    })

    test('credential_source (EcsContainer, Environment): the chain\'s own link gives the credentials that sign AssumeRole', TEST_TIMEOUT, async () => {
      for (const [source, vars, signer] of [
        ['EcsContainer', { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials` }, 'container'],
        ['Environment', { AWS_ACCESS_KEY_ID: base.accessKeyId, AWS_SECRET_ACCESS_KEY: base.secretAccessKey }, 'registered'],
      ]) {
        const ours = await sameAsReference({
          ...config(`[profile app]\nrole_arn = ${R('source-role')}\ncredential_source = ${source}\nregion = eu-south-1\n`),
          ...vars,
          AWS_REGION: 'eu-west-1',
        })
        assert.deepEqual(ours.sts.map((s) => [s.form.RoleArn, s.region, em.issued.get(s.signedBy)?.source]), [[R('source-role'), 'eu-south-1', signer]], source)
      }
    })

    // The JavaScript chain drops its "Unsupported credential source" error and tries the next
    // provider (here there is none); a typo must not silently hand out another identity, so ours stops.
    test('credential_source with an unknown value: CONFIG_INVALID naming it, nothing sent', TEST_TIMEOUT, async () => {
      const vars = config(`[profile app]\nrole_arn = ${R('source-role')}\ncredential_source = EcsContainerr\n`)
      const reference = await side('reference', vars)
      assert.equal(reference.outcome.ok, false)
      assert.match(reference.outcome.message, /Could not load credentials from any providers/)
      const native = await side('native', vars)
      assert.deepEqual([native.outcome.ok, native.outcome.code], [false, 'CONFIG_INVALID'])
      assert.match(native.outcome.message, /^profile app: credential_source "EcsContainerr" is not one of Environment, EcsContainer, Ec2InstanceMetadata/)
      assert.deepEqual([reference.sts, native.sts], [[], []])
    })

    test('web identity from the environment (EKS IRSA): the same AssumeRoleWithWebIdentity', TEST_TIMEOUT, async () => {
      const token = tempFile('side-irsa-token', 'eyJhbGciOiJSUzI1NiJ9.side-irsa.EXAMPLE')
      const ours = await sameAsReference({ AWS_WEB_IDENTITY_TOKEN_FILE: token, AWS_ROLE_ARN: ROLE_ARN, AWS_REGION: 'eu-north-1', AWS_PROFILE: undefined })
      assert.deepEqual(ours.sts.map((s) => s.form.Action), ['AssumeRoleWithWebIdentity'])
    })

    test('web identity from a profile (web_identity_token_file): the same AssumeRoleWithWebIdentity', TEST_TIMEOUT, async () => {
      const token = tempFile('side-profile-token', 'eyJhbGciOiJSUzI1NiJ9.side-profile.EXAMPLE')
      const ours = await sameAsReference({
        ...config(`[profile app]\nrole_arn = ${ROLE_ARN}\nweb_identity_token_file = ${token}\nregion = us-west-2\n`),
      })
      assert.deepEqual(ours.sts.map((s) => s.form.Action), ['AssumeRoleWithWebIdentity'])
    })

    test('a web identity profile whose token file is missing: CONFIG_INVALID naming the profile, nothing sent', TEST_TIMEOUT, async () => {
      const native = await side('native', config(`[profile app]\nrole_arn = ${ROLE_ARN}\nweb_identity_token_file = ${join(dir, 'no-such-token')}\n`))
      assert.deepEqual([native.outcome.ok, native.outcome.code], [false, 'CONFIG_INVALID'])
      assert.match(native.outcome.message, /^cannot read profile app: web_identity_token_file \(/)
      assert.deepEqual(native.sts, [])
    })

    // Half a setting is not a credential source for either AWS SDK: both chains pass to the next
    // source (here the container endpoint); ours says why in a process warning.
    test('half a setting (a key without its secret, a token file without a role, a profile without credentials): both pass to the container endpoint', TEST_TIMEOUT, async () => {
      const container = { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`, AWS_PROFILE: undefined }
      const cases = [
        ['AWS_ACCESS_KEY_ID alone', { AWS_ACCESS_KEY_ID: 'AKIAHALFSETTING00001' }, /AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not/],
        ['AWS_SECRET_ACCESS_KEY alone', { AWS_SECRET_ACCESS_KEY: 'MARKER-HALF-SECRET' }, /AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not/],
        ['AWS_WEB_IDENTITY_TOKEN_FILE alone', { AWS_WEB_IDENTITY_TOKEN_FILE: tempFile('half-token', 'jwt') }, /AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not/],
        ['AWS_PROFILE with a key but no secret', { AWS_PROFILE: 'app', ...config('[profile app]\naws_access_key_id = AKIAHALFPROFILE00001\n') }, null],
        ['AWS_PROFILE with only a region', { AWS_PROFILE: 'app', ...config('[profile app]\nregion = eu-west-1\n') }, null],
      ]
      for (const [what, vars, warning] of cases) {
        for (const name of ['reference', 'native']) {
          const { outcome, sts, stderr } = await side(name, { ...container, ...vars })
          assert.deepEqual([outcome.ok, outcome.source, sts.length], [true, 'container', 0], `${name}, ${what}: ${JSON.stringify(outcome)}`)
          if (name !== 'native') continue
          if (warning) {
            assert.match(stderr, warning, `${what}: the process warning`)
            assert.match(stderr, /AWS_WIF_SUPPLIER_IGNORED_SETTING/)
          }
          assert.ok(!stderr.includes('MARKER'), stderr)
        }
      }
    })

    test('the walk\'s corners: merged files, AWS_ROLE_SESSION_NAME, both sources, back to the selected profile', TEST_TIMEOUT, async () => {
      const container = { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials` }
      // Keys in the credentials file, a command and an SSO setting in the config file: static keys come first.
      for (const name of ['reference', 'native']) {
        const { outcome, sts } = await side(name, {
          ...config(`[profile app]\ncredential_process = /bin/false\nsso_region = us-east-1\n`),
          AWS_SHARED_CREDENTIALS_FILE: tempFile('corner-credentials', `[app]\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n`),
        })
        assert.deepEqual([outcome.ok, outcome.accessKeyId, sts.length], [true, base.accessKeyId, 0], `${name}: ${JSON.stringify(outcome)}`)
        // role_arn with both source_profile and credential_source is no role profile: the next source answers.
        const both = await side(name, {
          ...config(`[profile app]\nrole_arn = ${R('both')}\nsource_profile = base\ncredential_source = Environment\n\n[profile base]\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n`),
          ...container,
        })
        assert.deepEqual([both.outcome.ok, both.outcome.source, both.sts.length], [true, 'container', 0], `${name}: ${JSON.stringify(both.outcome)}`)
      }
      // A web identity profile without role_session_name takes AWS_ROLE_SESSION_NAME, as fromTokenFile does.
      const token = tempFile('corner-token', 'eyJhbGciOiJSUzI1NiJ9.corner.EXAMPLE')
      const ours = await sameAsReference({ ...config(`[profile app]\nrole_arn = ${ROLE_ARN}\nweb_identity_token_file = ${token}\n`), AWS_ROLE_SESSION_NAME: 'from-env' })
      assert.equal(ours.sts[0].form.RoleSessionName, 'from-env')
      // Back to the selected profile: the JavaScript SDK does not count it as visited, so its keys end the chain.
      const loop = await sameAsReference(
        config(`[profile app]\nrole_arn = ${R('outer')}\nsource_profile = mid\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n\n[profile mid]\nrole_arn = ${R('inner')}\nsource_profile = app\n`),
      )
      assert.deepEqual(loop.sts.map((s) => s.form.RoleArn), [R('inner'), R('outer')])
    })

    test('mfa_serial on a hop: both refuse before sending anything (ours: CONFIG_INVALID naming the profile)', TEST_TIMEOUT, async () => {
      const vars = config(`[profile app]\nrole_arn = ${R('outer')}\nsource_profile = mid\n\n[profile mid]\nrole_arn = ${R('inner')}\nsource_profile = base\nmfa_serial = arn:aws:iam::123456789012:mfa/dev\n\n[profile base]\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n`)
      const reference = await side('reference', vars)
      assert.equal(reference.outcome.ok, false)
      assert.match(reference.outcome.message, /requires multi-factor authentication/)
      assert.deepEqual(reference.sts, [])
      const native = await side('native', vars)
      assert.deepEqual([native.outcome.ok, native.outcome.code], [false, 'CONFIG_INVALID'])
      assert.match(native.outcome.message, /^profile mid requires multi-factor authentication \(mfa_serial\)/)
      assert.deepEqual(native.sts, [])
      assert.equal(em.count('sts'), 0)
    })
  })

  describe('container endpoint at a loopback AWS_CONTAINER_CREDENTIALS_FULL_URI', () => {
    test('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ending in "\\n" is trimmed', TEST_TIMEOUT, async () => {
      em.config.containerAuthToken = 'pod-identity-token-from-file'
      const file = tempFile('pod-token-newline', 'pod-identity-token-from-file\n')
      const result = await runScenario({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file, AWS_REGION: 'us-west-2' }, { emulatorUrl: em.url })
      assertFlowOk(result.flow)
      const container = only(log(), 'container')
      assert.equal(container.length, 1)
      assert.equal(container[0].status, 200)
      assert.equal(container[0].authorization, 'pod-identity-token-from-file')
      assertGoogleSide(log(), { region: 'us-west-2', accessKeyId: result.credentials.accessKeyId })
    })

    test('AWS_CONTAINER_AUTHORIZATION_TOKEN', TEST_TIMEOUT, async () => {
      em.config.containerAuthToken = 'pod-identity-token-from-env'
      const result = await runScenario({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`, AWS_CONTAINER_AUTHORIZATION_TOKEN: 'pod-identity-token-from-env', AWS_REGION: 'us-west-2' }, { emulatorUrl: em.url })
      assertFlowOk(result.flow)
      const container = only(log(), 'container')
      assert.deepEqual(container.map((r) => [r.status, r.authorization]), [[200, 'pod-identity-token-from-env']])
      assertGoogleSide(log(), { region: 'us-west-2', accessKeyId: result.credentials.accessKeyId })
    })

    test('the token file is re-read on each fetch (rotation + short-lived credentials)', TEST_TIMEOUT, async () => {
      em.config.credentialsTtlMs = 4000
      const issuedBefore = new Set(em.issued.keys())
      const file = tempFile('pod-token-rotating', 'rotating-token-one\n')
      const result = await runScenario(
        { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file, AWS_REGION: 'us-west-2' },
        { emulatorUrl: em.url, options: { refreshMarginSeconds: 3 }, rotate: { file, token: 'rotating-token-two\n' } },
      )
      assertFlowOk(result.flow)
      assertFlowOk(result.flow2)
      assert.notEqual(result.rotation.after, result.rotation.before)
      // The refresh may come due at any time (credentials live 3-4 s, margin 3 s), so the fetches are
      // some with the first token, then, once the file was rewritten, only with the second.
      const container = only(log(), 'container')
      assert.ok(container.every((r) => r.status === 200), JSON.stringify(container))
      const tokens = container.map((r) => r.authorization)
      const switchAt = tokens.indexOf('rotating-token-two')
      assert.ok(switchAt > 0, `no fetch with the rotated token: ${JSON.stringify(tokens)}`)
      assert.ok(tokens.slice(0, switchAt).every((t) => t === 'rotating-token-one'), JSON.stringify(tokens))
      assert.ok(tokens.slice(switchAt).every((t) => t === 'rotating-token-two'), JSON.stringify(tokens))
      // Which token fetched which key: the emulator issues one key per successful fetch, in order.
      const keys = [...em.issued.entries()].filter(([k, v]) => v.source === 'container' && !issuedBefore.has(k)).map(([k]) => k)
      assert.equal(keys.length, container.length)
      const tokenOf = new Map(keys.map((k, i) => [k, tokens[i]]))
      assert.equal(tokenOf.get(result.rotation.after), 'rotating-token-two')
      const sts = only(log(), 'sts')
      assert.equal(sts.length, 2)
      assert.ok(sts.every((r) => r.verdict.ok && r.subjectTokenRegion === 'us-west-2'), JSON.stringify(sts))
      assert.equal(tokenOf.get(sts[0].verdict.accessKeyId), 'rotating-token-one', 'the first flow signs with a key fetched with the first token')
      assert.equal(tokenOf.get(sts[1].verdict.accessKeyId), 'rotating-token-two', 'the second flow signs with a key fetched with the rotated token')
    })
  })

  describe('region', () => {
    test('from ECS task metadata v4 when no region variable is set', TEST_TIMEOUT, async () => {
      em.config.region = 'eu-west-3'
      const result = await runScenario(
        { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v2/credentials/task-role`, ECS_CONTAINER_METADATA_URI_V4: `${em.url}/ecs-metadata/v4/abc` },
        { emulatorUrl: em.url },
      )
      assertFlowOk(result.flow)
      assert.equal(result.region, 'eu-west-3')
      assertGoogleSide(log(), { region: 'eu-west-3', accessKeyId: result.credentials.accessKeyId })
      const metadata = only(log(), 'taskMetadata')
      assert.deepEqual(metadata.map((r) => [r.path, r.status]), [['/ecs-metadata/v4/abc/task', 200]], 'task metadata read once')
      assert.equal(only(log(), 'container').length, 1)
    })

    test('REGION_NOT_FOUND names every step when nothing is configured', TEST_TIMEOUT, async () => {
      const key = { accessKeyId: 'AKIAENVSTATICKEY0002', secretAccessKey: 'env/static/secret/key/EXAMPLE0000000000002' }
      em.registerAwsKey(key)
      const result = await runScenario({ AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey }, { emulatorUrl: em.url })
      assert.equal(result.region.error.code, 'REGION_NOT_FOUND')
      assert.equal(result.region.error.isError, true)
      assert.equal(result.region.error.retryable, false)
      for (const step of ['AWS_REGION is not set', 'AWS_DEFAULT_REGION is not set', 'ECS_CONTAINER_METADATA_URI_V4 is not set', 'IMDS is disabled']) {
        assert.ok(result.region.error.message.includes(step), `missing "${step}" in: ${result.region.error.message}`)
      }
      assert.equal(result.flow.error?.code, 'REGION_NOT_FOUND', JSON.stringify(result.flow))
      assert.deepEqual(result.credentials, { accessKeyId: key.accessKeyId }, 'credentials themselves are fine')
      assert.equal(em.requests.length, 0, 'nothing reached the emulator: no subject token without a region')
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Link-local addresses, inside a private network namespace.

const unavailable = netnsUnavailableReason()
const NETNS = { timeout: 60_000, skip: unavailable ? `network namespace unavailable: ${unavailable}` : false }

describe('link-local environments (private network namespace)', () => {
  /** Run the fixture in a namespace with a hermetic env (IMDS not disabled unless `vars` says so). */
  async function runNetnsScenario(vars, scenario) {
    const env = hermeticEnv({ AWS_EC2_METADATA_DISABLED: undefined, ...vars, WIF_SCENARIO: JSON.stringify({ netns: true, ...scenario }) })
    const run = await runInNetns(FIXTURE, { env, timeoutMs: 50_000 })
    assert.equal(run.timedOut, false, `fixture timed out\n${run.stderr}`)
    assert.equal(run.code, 0, run.stderr)
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1))
    assert.equal(result.fatal, undefined, JSON.stringify(result.fatal))
    return result
  }

  const routes = (result, route) => result.requests.filter((r) => r.route === route)

  test('ECS Fargate / App Runner: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on 169.254.170.2', NETNS, async () => {
    const result = await runNetnsScenario({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/6f3c0b5e-0000-4000-8000-000000000000', AWS_REGION: 'us-east-2' }, {})
    assertFlowOk(result.flow)
    const container = routes(result, 'container')
    assert.deepEqual(container.map((r) => [r.listener, r.path, r.status]), [['169.254.170.2:80', '/v2/credentials/6f3c0b5e-0000-4000-8000-000000000000', 200]])
    assert.equal(container[0].authorization, null, 'ECS sends no Authorization header')
    assertGoogleSide(result.requests, { region: 'us-east-2', accessKeyId: result.credentials.accessKeyId })
    assert.equal(routes(result, 'imds').length, 0, 'IMDS is not consulted')
  })

  test('EKS Pod Identity: FULL_URI http://169.254.170.23/v1/credentials + token file', NETNS, async () => {
    const file = tempFile('eks-pod-identity-token', 'eks-pod-identity-token-EXAMPLE\n')
    const result = await runNetnsScenario(
      { AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials', AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file, AWS_REGION: 'us-west-2' },
      { emulatorConfig: { containerAuthToken: 'eks-pod-identity-token-EXAMPLE' } },
    )
    assertFlowOk(result.flow)
    const container = routes(result, 'container')
    assert.deepEqual(container.map((r) => [r.listener, r.path, r.status, r.authorization]), [['169.254.170.23:80', '/v1/credentials', 200, 'eks-pod-identity-token-EXAMPLE']])
    assertGoogleSide(result.requests, { region: 'us-west-2', accessKeyId: result.credentials.accessKeyId })
    assert.equal(routes(result, 'imds').length, 0)
  })

  test('EC2 IMDSv2 at 169.254.169.254: credentials and region (no AWS_REGION)', NETNS, async () => {
    const result = await runNetnsScenario({}, { emulatorConfig: { region: 'ap-southeast-2' } })
    assertFlowOk(result.flow)
    assert.equal(result.region, 'ap-southeast-2')
    const imds = routes(result, 'imds')
    assert.ok(imds.every((r) => r.listener === '169.254.169.254:80' && r.status === 200), JSON.stringify(imds))
    const credentialGets = imds.filter((r) => r.method === 'GET' && r.path === '/latest/meta-data/iam/security-credentials/wif-demo-role')
    assert.equal(credentialGets.length, 1, 'instance-profile credentials fetched exactly once')
    assert.equal(imds.filter((r) => r.path === '/latest/meta-data/placement/region').length, 1, 'region fetched once')
    assert.ok(imds.some((r) => r.method === 'PUT' && r.path === '/latest/api/token'), 'IMDSv2 session token requested')
    assert.equal(imds.filter((r) => r.method === 'PUT').length, 1, 'the IMDSv2 session token is reused')
    assertGoogleSide(result.requests, { region: 'ap-southeast-2', accessKeyId: result.credentials.accessKeyId })
    assert.equal(routes(result, 'container').length, 0)
  })

  test('EC2 profile role chain with credential_source = Ec2InstanceMetadata: the instance credentials sign AssumeRole', NETNS, async () => {
    const config = tempFile('ec2-source-config', '[profile app]\nrole_arn = arn:aws:iam::123456789012:role/cross-account\ncredential_source = Ec2InstanceMetadata\n')
    const result = await runNetnsScenario(
      { AWS_PROFILE: 'app', AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'), AWS_ENDPOINT_URL_STS: 'http://169.254.169.254/aws-sts', AWS_REGION: 'eu-west-1' },
      {},
    )
    assertFlowOk(result.flow)
    const imds = routes(result, 'imds')
    assert.equal(imds.filter((r) => r.method === 'GET' && r.path === '/latest/meta-data/iam/security-credentials/wif-demo-role').length, 1)
    const sts = routes(result, 'awsSts')
    assert.equal(sts.length, 1)
    assert.deepEqual([sts[0].status, sts[0].awsStsForm.Action, sts[0].awsStsForm.RoleArn, sts[0].verdict.ok, sts[0].verdict.region], [200, 'AssumeRole', 'arn:aws:iam::123456789012:role/cross-account', true, 'eu-west-1'])
    assert.match(sts[0].verdict.arn ?? '', /assumed-role\/wif-demo-role\//, 'signed by the instance profile credentials')
    assertGoogleSide(result.requests, { region: 'eu-west-1', accessKeyId: result.credentials.accessKeyId })
    assert.equal(routes(result, 'container').length, 0)
  })

  test('ECS on EC2 without AWS_REGION: region from task metadata, not IMDS', NETNS, async () => {
    const result = await runNetnsScenario(
      { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/ecs-on-ec2-task', ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/ecs-metadata/v4/abc' },
      { emulatorConfig: { region: 'sa-east-1', launchType: 'EC2' } },
    )
    assertFlowOk(result.flow)
    assert.equal(result.region, 'sa-east-1')
    assert.deepEqual(routes(result, 'container').map((r) => [r.listener, r.status]), [['169.254.170.2:80', 200]])
    assert.deepEqual(routes(result, 'taskMetadata').map((r) => [r.listener, r.path, r.status]), [['169.254.170.2:80', '/ecs-metadata/v4/abc/task', 200]])
    assert.equal(routes(result, 'imds').length, 0, 'IMDS is not needed when task metadata answers')
    assertGoogleSide(result.requests, { region: 'sa-east-1', accessKeyId: result.credentials.accessKeyId })
  })
})
