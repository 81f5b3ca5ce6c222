// `aws-wif-supplier doctor` (bin/aws-wif-supplier.js) against the emulator: a passing setup, the
// runtime it recognises (App Runner, ECS, EKS Pod Identity, IRSA, static keys) with its evidence,
// and for each broken setup the step that fails, its code and a fix; exit 0 / 1 / 2; --json; and no
// marker secret in any output. And the google-auth-library copies of the application in the working
// directory (bin/gal-copies.js), on planted node_modules layouts (npm nesting, pnpm links, odd
// folders, the package cap); the real npm stack of issue 20 is in nested.test.mjs. And what
// GCE_METADATA_HOST points at (issue 21): a metadata server of ours, another server, nothing.
//
// Every run is a child process with a hermetic environment (the doctor is a CLI; the AWS side
// caches per process). Loopback setups use an emulator in this process on 127.0.0.1. The runtimes
// whose credentials live at link-local addresses (169.254.170.2, 169.254.170.23) run the doctor
// inside a private network namespace, next to an emulator listening there (fixtures/doctor-netns.mjs);
// they are skipped where namespaces are unavailable.
//
// Run: node --test __test__/doctor.test.mjs

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createRequire } from 'node:module'
import { createServer as createTcpServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { collectChild, netnsUnavailableReason, runInNetns } from './netns.mjs'
import { leakedMarkers, makeMarkers } from './secret-scenarios.mjs'
import { CREDENTIAL_CODES, gcloudCredConfig, here, impersonationUrl, lastJsonLine, runNode, unusedPort } from './support.mjs'
import galCopies from '../bin/gal-copies.js'

makeProcessHermetic()

const BIN = here('../bin/aws-wif-supplier.js')
const TEST_TIMEOUT = { timeout: 45_000 }
const SA = DEFAULT_CONFIG.serviceAccount
const AUDIENCE = DEFAULT_CONFIG.audience
const STEPS = ['config', 'region', 'credentials', 'subject_token', 'sts', 'impersonation']
const USAGE = 'usage: aws-wif-supplier doctor [--config FILE] [--json]\n       aws-wif-supplier metadata-server [--host 127.0.0.1] [--port N] [--config FILE] [--project ID]'

const m = makeMarkers(randomBytes(6).toString('hex'))
/** What the container endpoint hands out (marker secrets). */
const CONTAINER_CREDENTIALS = Object.freeze({ accessKeyId: 'ASIADOCTORCONTAINER1', secretAccessKey: m.secretKey, token: m.sessionToken })

let em
let dir
let seq = 0

before(async () => {
  em = await startEmulator()
  dir = mkdtempSync(join(tmpdir(), 'aws-wif-doctor-'))
})
beforeEach(() => {
  em.reset()
  em.config = { ...DEFAULT_CONFIG, credentials: CONTAINER_CREDENTIALS }
})
after(async () => {
  await em?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Write a file in the per-run temp directory; returns its path. */
function tempFile(name, content) {
  const path = join(dir, `${++seq}-${name}`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return path
}

/** The gcloud credential configuration, pointed at the emulator, written to a file. */
const configFile = (overrides) => tempFile('wif.json', gcloudCredConfig(em.url, { audience: AUDIENCE, serviceAccount: SA, ...overrides }))

/** Loopback container endpoint + region: the passing base setup. */
const containerVars = () => ({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`, AWS_REGION: 'us-east-2' })

/**
 * Parse the human report: {header, runtime, chain: [{mark, detail}], googleConfig, application,
 * authLibraries: [line], steps: [{label, step, detail, fix?}], warnings: [{topic, detail, fixes}]}.
 * Step lines are `PASS|FAIL|SKIP <step padded to 14> <detail>`, a failure's fix on the next line;
 * warnings are `WARN <topic padded to 14> <detail>`, each fix on a line of its own.
 */
function parseReport(stdout) {
  const lines = stdout.split('\n').filter((l) => l !== '')
  const report = { header: lines[0], runtime: null, chain: [], googleConfig: null, application: null, authLibraries: [], steps: [], warnings: [] }
  let last = null
  for (const line of lines.slice(1)) {
    let match
    if ((match = /^ {2}runtime {7}(.*)$/.exec(line))) report.runtime = match[1]
    else if ((match = /^ {2}chain {9}([*+-]) (.*)$/.exec(line))) report.chain.push({ mark: match[1], detail: match[2] })
    else if ((match = /^ {2}proxy {9}(.*)$/.exec(line))) report.proxy = match[1]
    else if ((match = /^ {2}google config (.*)$/.exec(line))) report.googleConfig = match[1]
    else if ((match = /^ {2}application {3}(.*)$/.exec(line))) report.application = match[1]
    else if ((match = /^ {2}auth library {2}(.*)$/.exec(line))) report.authLibraries.push(match[1])
    else if ((match = /^ {2}metadata host (.*)$/.exec(line))) report.metadataHost = match[1]
    else if ((match = /^(PASS|FAIL|SKIP) (\S+) +(.*)$/.exec(line))) report.steps.push((last = { label: match[1], step: match[2], detail: match[3] }))
    else if ((match = /^WARN (\S+) +(.*)$/.exec(line))) report.warnings.push((last = { topic: match[1], detail: match[2], fixes: [] }))
    else if ((match = /^ {5}fix: (.*)$/.exec(line)) && last?.fixes) last.fixes.push(match[1])
    else if (match && last) last.fix = match[1]
    else assert.fail(`unexpected report line: ${JSON.stringify(line)}\n${stdout}`)
  }
  return report
}

/** No marker secret, issued Google token or SigV4 signature in the output of a run. */
function assertNothingSecret(run, extraMarkers = {}) {
  const text = `${run.stdout}\n${run.stderr}`
  assert.deepEqual(leakedMarkers(text, { ...m, ...extraMarkers }), [], `marker secret in the doctor output:\n${text}`)
  for (const token of em.googleTokens.keys()) assert.ok(!text.includes(token), 'an issued Google token in the doctor output')
  assert.ok(!/ya29\./.test(text), 'an access token in the doctor output')
  assert.ok(!/Signature=[0-9a-f]{64}/.test(text), 'a SigV4 signature in the doctor output')
}

/** Run the doctor with a hermetic environment plus `vars`; checks the run ended and leaked nothing. */
async function doctor(vars, args, { extraMarkers, cwd } = {}) {
  const run = await runNode(BIN, { env: hermeticEnv(vars), args, timeoutMs: 40_000, cwd })
  assert.equal(run.timedOut, false, `doctor timed out\n${run.stdout}\n${run.stderr}`)
  assertNothingSecret(run, extraMarkers)
  return run
}

/** Run `doctor --config FILE` and parse its report; asserts the exit status. */
async function doctorReport(vars, { config = configFile(), exit, extraMarkers } = {}) {
  const run = await doctor(vars, ['doctor', '--config', config], { extraMarkers })
  const report = parseReport(run.stdout)
  assert.equal(run.code, exit, `exit status\n${run.stdout}\n${run.stderr}`)
  assert.equal(report.header, 'aws-wif-supplier doctor')
  assert.equal(run.stderr, '', 'nothing on stderr')
  return report
}

/** Each step's label, in order. */
const labels = (report) => report.steps.map((s) => [s.step, s.label])
const stepOf = (report, name) => report.steps.find((s) => s.step === name)

/**
 * The report of a setup broken at `failing`: every earlier step PASS, `failing` FAIL with `code`,
 * every later one SKIP. Returns the failing step.
 */
function assertFailsAt(report, failing, code) {
  const at = STEPS.indexOf(failing)
  assert.deepEqual(labels(report), STEPS.map((s, i) => [s, i < at ? 'PASS' : i === at ? 'FAIL' : 'SKIP']))
  const step = stepOf(report, failing)
  assert.ok(step.detail.startsWith(`${code}: `), `expected ${code} at ${failing}: ${step.detail}`)
  for (const skipped of report.steps.slice(at + 1)) assert.equal(skipped.detail, 'not run: an earlier step failed')
  return step
}

/** A passing report: all six steps PASS, with the details users read. */
function assertAllPass(report, { region, regionSource, credentialSource, accessKeyId, temporary = true }) {
  assert.deepEqual(labels(report), STEPS.map((s) => [s, 'PASS']))
  const detail = (name) => stepOf(report, name).detail
  assert.equal(detail('config'), `audience ${AUDIENCE}; token_url ${em.url}/v1/token; impersonating ${SA} for 3600 s; scopes https://www.googleapis.com/auth/cloud-platform`)
  assert.equal(detail('region'), `${region} (from ${regionSource})`)
  const masked = `${accessKeyId.slice(0, 4)}…${accessKeyId.slice(-4)}`
  const expiry = temporary ? ', account 123456789012, expire \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ' : ', do not expire'
  assert.match(detail('credentials'), new RegExp(`^${temporary ? 'temporary' : 'long-term'} credentials from ${credentialSource.replace(/[()]/g, '\\$&')}, access key ${masked}${expiry}$`))
  assert.match(
    detail('subject_token'),
    new RegExp(`^POST https://sts\\.${region}\\.amazonaws\\.com\\?… \\(GetCallerIdentity\\); AWS4-HMAC-SHA256 Credential=${masked}/\\d{8}/${region}/sts/aws4_request, SignedHeaders=host;x-amz-date${temporary ? ';x-amz-security-token' : ''}$`),
  )
  assert.equal(detail('sts'), 'Bearer token, expires in 3600 s')
  assert.match(detail('impersonation'), new RegExp(`^${SA.replace(/\./g, '\\.')}: token expires \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`))
  assert.ok(!report.steps.some((s) => s.fix), 'no fix line when everything passes')
  assert.ok(!JSON.stringify(report).includes(accessKeyId), 'the access key id is masked')
}

/** The Google side of a passing run: one exchange the SigV4 oracle accepted, one impersonation. */
function assertEmulatorFlow({ region, accessKeyId }) {
  const sts = em.requests.filter((r) => r.route === 'sts')
  assert.equal(sts.length, 1)
  assert.equal(sts[0].verdict.ok, true, sts[0].verdict.reason)
  assert.equal(sts[0].verdict.region, region)
  assert.equal(sts[0].verdict.accessKeyId, accessKeyId)
  assert.deepEqual(em.requests.filter((r) => r.route === 'iam').map((r) => r.status), [200])
  assert.equal(em.count('imds'), 0, 'the credential_source EC2 URLs are not contacted')
}

// ---------------------------------------------------------------------------------------------

describe('doctor: passing setups (loopback)', () => {
  test('container endpoint + AWS_REGION: exit 0, every step PASS', TEST_TIMEOUT, async () => {
    const report = await doctorReport(containerVars(), { exit: 0 })
    assert.equal(report.runtime, 'container credentials endpoint (FULL_URI) (evidence: AWS_CONTAINER_CREDENTIALS_FULL_URI)')
    assert.match(report.googleConfig, /-wif\.json$/)
    assertAllPass(report, { region: 'us-east-2', regionSource: 'AWS_REGION', credentialSource: 'container', accessKeyId: CONTAINER_CREDENTIALS.accessKeyId })
    assertEmulatorFlow({ region: 'us-east-2', accessKeyId: CONTAINER_CREDENTIALS.accessKeyId })
    assert.equal(em.count('container'), 1)
  })

  test('--json: parses, with the runtime, the config source and every step', TEST_TIMEOUT, async () => {
    const config = configFile()
    const run = await doctor({ ...containerVars(), AWS_REGION: undefined, AWS_DEFAULT_REGION: 'eu-west-1' }, ['doctor', '--config', config, '--json'])
    assert.equal(run.code, 0, run.stdout + run.stderr)
    const out = JSON.parse(run.stdout)
    assert.deepEqual(Object.keys(out), ['runtime', 'chain', 'proxy', 'config', 'steps', 'googleAuthLibrary', 'metadataServer'])
    assert.equal(out.metadataServer, null, 'GCE_METADATA_HOST is unset')
    assert.equal(out.proxy, 'none')
    assert.deepEqual(out.chain.map((l) => l.link), ['environment', 'profile', 'web identity', 'container', 'imds'], 'every link, in chain order')
    assert.deepEqual(out.chain.filter((l) => l.selected).map((l) => l.link), ['container'])
    assert.deepEqual(out.runtime, { runtime: 'container credentials endpoint (FULL_URI)', evidence: ['AWS_CONTAINER_CREDENTIALS_FULL_URI'] })
    assert.equal(out.config, config)
    assert.deepEqual(out.steps.map((s) => [s.step, s.status]), STEPS.map((s) => [s, 'ok']))
    for (const s of out.steps) {
      assert.equal(typeof s.detail, 'string')
      assert.equal(s.code, undefined)
    }
    assert.equal(out.steps[1].detail, 'eu-west-1 (from AWS_DEFAULT_REGION)')
    assertEmulatorFlow({ region: 'eu-west-1', accessKeyId: CONTAINER_CREDENTIALS.accessKeyId })
  })

  test('GOOGLE_APPLICATION_CREDENTIALS instead of --config', TEST_TIMEOUT, async () => {
    const run = await doctor({ ...containerVars(), GOOGLE_APPLICATION_CREDENTIALS: configFile() }, ['doctor'])
    assert.equal(run.code, 0, run.stdout)
    const report = parseReport(run.stdout)
    assert.equal(report.googleConfig, 'GOOGLE_APPLICATION_CREDENTIALS')
    assertAllPass(report, { region: 'us-east-2', regionSource: 'AWS_REGION', credentialSource: 'container', accessKeyId: CONTAINER_CREDENTIALS.accessKeyId })
  })

  test('no Google configuration: the AWS steps only (region, credentials), exit 0', TEST_TIMEOUT, async () => {
    const run = await doctor(containerVars(), ['doctor'])
    assert.equal(run.code, 0, run.stdout)
    const report = parseReport(run.stdout)
    assert.match(report.googleConfig, /^none \(pass --config FILE or set GOOGLE_APPLICATION_CREDENTIALS/)
    assert.deepEqual(labels(report), [['region', 'PASS'], ['credentials', 'PASS']])
    assert.equal(em.count('sts'), 0)

    const json = JSON.parse((await doctor(containerVars(), ['doctor', '--json'])).stdout)
    assert.equal(json.config, null)
    assert.deepEqual(json.steps.map((s) => [s.step, s.status]), [['region', 'ok'], ['credentials', 'ok']])
  })

  test('EKS IRSA: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN + AWS_ENDPOINT_URL_STS', TEST_TIMEOUT, async () => {
    em.config.webIdentityToken = m.webIdentity
    const vars = {
      AWS_WEB_IDENTITY_TOKEN_FILE: tempFile('irsa-token', m.webIdentity),
      AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/irsa-role',
      AWS_ROLE_SESSION_NAME: 'doctor-irsa',
      AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts`,
      AWS_REGION: 'eu-central-1',
    }
    const report = await doctorReport(vars, { exit: 0 })
    assert.equal(report.runtime, 'EKS IRSA (web identity) (evidence: AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME)')
    const awsSts = em.requests.filter((r) => r.route === 'awsSts')
    assert.deepEqual(awsSts.map((r) => r.status), [200], 'AssumeRoleWithWebIdentity once')
    const accessKeyId = [...em.issued.entries()].find(([, v]) => v.source === 'web-identity')[0]
    assertAllPass(report, { region: 'eu-central-1', regionSource: 'AWS_REGION', credentialSource: 'web identity (IRSA)', accessKeyId })
    assertEmulatorFlow({ region: 'eu-central-1', accessKeyId })
    assert.equal(em.count('container'), 0)
  })

  test('static environment keys (registered with the emulator)', TEST_TIMEOUT, async () => {
    const key = { accessKeyId: 'AKIADOCTORSTATIC0001', secretAccessKey: m.envSecret }
    em.registerAwsKey(key)
    const report = await doctorReport({ AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, AWS_REGION: 'ap-northeast-1' }, { exit: 0 })
    assert.equal(report.runtime, 'static environment keys (evidence: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)')
    assertAllPass(report, { region: 'ap-northeast-1', regionSource: 'AWS_REGION', credentialSource: 'environment', accessKeyId: key.accessKeyId, temporary: false })
    assertEmulatorFlow({ region: 'ap-northeast-1', accessKeyId: key.accessKeyId })
  })
})

// ---------------------------------------------------------------------------------------------

describe('doctor: one truth for "which source"', () => {
  // Issue 10, item 7: the old heuristic named IRSA here, while the chain uses the profile first.
  test('a profile and IRSA both configured: doctor names the profile, as the chain loads it', TEST_TIMEOUT, async () => {
    const key = { accessKeyId: 'AKIAPROFILEDOCTOR001', secretAccessKey: 'doctor/profile/secret/EXAMPLE00000000000' }
    em.registerAwsKey(key)
    const home = mkdtempSync(join(dir, 'home-'))
    mkdirSync(join(home, '.aws'))
    writeFileSync(join(home, '.aws', 'credentials'), `[default]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n`)
    const report = await doctorReport(
      { AWS_REGION: 'us-east-2', HOME: home, AWS_CONFIG_FILE: undefined, AWS_SHARED_CREDENTIALS_FILE: undefined, AWS_WEB_IDENTITY_TOKEN_FILE: join(home, 'token'), AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/r' },
      { exit: 0 },
    )
    assert.match(report.runtime, /^shared AWS profile/)
    assert.deepEqual(report.chain.map((l) => l.mark), ['-', '*', '+', '-', '-'])
    assert.equal(report.chain[1].detail, 'profile default: static keys')
    assert.match(report.steps.find((s) => s.step === 'credentials').detail, /from profile/)
    assert.equal(em.count('awsSts'), 0, 'web identity was not used')
  })
})

describe('doctor: each broken setup names the failing step and exits 1', () => {
  test('no region → region: REGION_NOT_FOUND', TEST_TIMEOUT, async () => {
    const report = await doctorReport({ ...containerVars(), AWS_REGION: undefined }, { exit: 1 })
    const step = assertFailsAt(report, 'region', 'REGION_NOT_FOUND')
    assert.match(step.detail, /AWS_REGION is not set/)
    assert.match(step.fix, /AWS_REGION/)
    assert.equal(em.requests.length, 0, 'nothing contacted')
  })

  test('no credentials → credentials: CREDENTIALS_NOT_FOUND', TEST_TIMEOUT, async () => {
    // No profile files either (HOME is an empty directory), so the runtime is "none found".
    const home = mkdtempSync(join(dir, 'home-'))
    const report = await doctorReport({ AWS_REGION: 'us-east-2', HOME: home, AWS_CONFIG_FILE: undefined, AWS_SHARED_CREDENTIALS_FILE: undefined }, { exit: 1 })
    assert.equal(report.runtime, 'none found (IMDS disabled) (evidence: AWS_EC2_METADATA_DISABLED)')
    const step = assertFailsAt(report, 'credentials', 'CREDENTIALS_NOT_FOUND')
    for (const source of ['environment', 'profile', 'web identity', 'container', 'IMDS']) assert.ok(step.detail.includes(`${source}: `), `${source} not named: ${step.detail}`)
    assert.ok(step.fix)
    assert.equal(em.requests.length, 0)
  })

  test('container endpoint answers 500 every time → credentials: CREDENTIALS_ENDPOINT_ERROR', TEST_TIMEOUT, async () => {
    em.setAlways('container', { status: 500 })
    const report = await doctorReport(containerVars(), { exit: 1 })
    const step = assertFailsAt(report, 'credentials', 'CREDENTIALS_ENDPOINT_ERROR')
    assert.match(step.detail, /HTTP 500/)
    assert.equal(em.count('container'), 3, 'retried, bounded')
    assert.equal(em.count('sts'), 0)
  })

  test('wrong audience → sts: STS_EXCHANGE_FAILED (invalid_target), fix names the audience format', TEST_TIMEOUT, async () => {
    const config = configFile({ audience: AUDIENCE.replace('/projects/123456/', '/projects/999999/') })
    const report = await doctorReport(containerVars(), { config, exit: 1 })
    const step = assertFailsAt(report, 'sts', 'STS_EXCHANGE_FAILED')
    assert.match(step.detail, /HTTP 400: invalid_target/)
    assert.match(step.fix, /PROJECT_NUMBER/)
    assert.deepEqual(em.requests.filter((r) => r.route === 'sts').map((r) => r.verdict.reason), ['audience-mismatch'])
    assert.equal(em.count('iam'), 0)
  })

  test('signature rejected (static keys Google STS cannot verify) → sts: STS_EXCHANGE_FAILED (invalid_grant)', TEST_TIMEOUT, async () => {
    const report = await doctorReport({ AWS_ACCESS_KEY_ID: 'AKIADOCTORUNKNOWN001', AWS_SECRET_ACCESS_KEY: m.envSecret, AWS_REGION: 'us-east-2' }, { exit: 1 })
    const step = assertFailsAt(report, 'sts', 'STS_EXCHANGE_FAILED')
    assert.match(step.detail, /invalid_grant/)
    assert.match(step.fix, /GetCallerIdentity/)
    assert.deepEqual(em.requests.filter((r) => r.route === 'sts').map((r) => r.verdict.reason), ['unknown-access-key'])
  })

  test('impersonation denied → impersonation: IMPERSONATION_FAILED, fix names roles/iam.workloadIdentityUser', TEST_TIMEOUT, async () => {
    em.config.serviceAccount = 'someone-else@my-project.iam.gserviceaccount.com'
    const report = await doctorReport(containerVars(), { exit: 1 })
    const step = assertFailsAt(report, 'impersonation', 'IMPERSONATION_FAILED')
    assert.match(step.detail, /HTTP 403: PERMISSION_DENIED/)
    assert.match(step.fix, /roles\/iam\.workloadIdentityUser/)
    assert.ok(step.fix.includes(SA))
  })

  for (const [name, content, pattern] of [
    ['malformed JSON', '{"type": "external_account", "audience": ', /is not valid JSON/],
    ['environment_id aws2', JSON.stringify(gcloudCredConfig('http://127.0.0.1:9', { audience: AUDIENCE, serviceAccount: SA, credential_source: { environment_id: 'aws2' } })), /"aws2"/],
    ['token_url over http to a non-loopback host', JSON.stringify(gcloudCredConfig('http://127.0.0.1:9', { audience: AUDIENCE, serviceAccount: SA, token_url: 'http://sts.example.test/v1/token' })), /token_url must be an https URL/],
  ]) {
    test(`malformed config (${name}) → config: CONFIG_INVALID naming the file; all six steps, the AWS ones run, the Google ones not`, TEST_TIMEOUT, async () => {
      const config = tempFile('bad.json', content)
      const human = { ok: 'PASS', failed: 'FAIL', skipped: 'SKIP' }
      for (const args of [['doctor', '--config', config], [`doctor`, `--config=${config}`, '--json']]) {
        const run = await doctor(containerVars(), args)
        assert.equal(run.code, 1, run.stdout)
        const steps = args.includes('--json') ? JSON.parse(run.stdout).steps.map((s) => ({ step: s.step, label: human[s.status], detail: s.detail, code: s.code })) : parseReport(run.stdout).steps
        assert.deepEqual(
          steps.map((s) => [s.step, s.label]),
          [['config', 'FAIL'], ['region', 'PASS'], ['credentials', 'PASS'], ['subject_token', 'SKIP'], ['sts', 'SKIP'], ['impersonation', 'SKIP']],
          JSON.stringify(args),
        )
        assert.deepEqual(steps.map((s) => s.step), STEPS, 'the same steps as a loaded configuration')
        assert.ok(steps[0].detail.startsWith('CONFIG_INVALID: '), steps[0].detail)
        assert.ok(steps[0].detail.includes(config), `the file is not named: ${steps[0].detail}`)
        assert.match(steps[0].detail, pattern)
        if (args.includes('--json')) assert.equal(steps[0].code, 'CONFIG_INVALID')
        for (const skipped of steps.slice(3)) assert.equal(skipped.detail, 'not run: the configuration could not be loaded')
      }
      assert.deepEqual([em.count('sts'), em.count('iam')], [0, 0], 'nothing sent to Google')
    })
  }

  test('--json of a broken setup: the failed step carries code and hint', TEST_TIMEOUT, async () => {
    em.config.serviceAccount = 'someone-else@my-project.iam.gserviceaccount.com'
    const run = await doctor(containerVars(), ['doctor', '--json', '--config', configFile()])
    assert.equal(run.code, 1)
    const out = JSON.parse(run.stdout)
    assert.deepEqual(out.steps.map((s) => [s.step, s.status]), [...STEPS.slice(0, 5).map((s) => [s, 'ok']), ['impersonation', 'failed']])
    const failed = out.steps.at(-1)
    assert.equal(failed.code, 'IMPERSONATION_FAILED')
    assert.match(failed.hint, /roles\/iam\.workloadIdentityUser/)
  })

  test('an empty --config value (an unset variable) is a usage error: exit 2, one line, nothing checked', TEST_TIMEOUT, async () => {
    for (const args of [['doctor', '--config='], ['doctor', '--config=', '--json'], ['doctor', '--config', ''], ['doctor', '--json', '--config', ' ']]) {
      const run = await doctor({ ...containerVars(), GOOGLE_APPLICATION_CREDENTIALS: configFile() }, args)
      assert.equal(run.code, 2, JSON.stringify(args))
      assert.equal(run.stdout, '')
      const lines = run.stderr.trim().split('\n')
      assert.equal(lines.length, 1, run.stderr)
      assert.match(lines[0], /^aws-wif-supplier doctor: --config needs a file path, and its value is empty/)
    }
    assert.equal(em.requests.length, 0)
  })

  test('usage errors exit 2 with the usage line on stderr', TEST_TIMEOUT, async () => {
    for (const args of [[], ['nope'], ['doctor', '--bogus'], ['doctor', '--config'], ['doctor', '--config', '--json'], ['doctor', '--json', 'extra']]) {
      const run = await doctor(containerVars(), args)
      assert.equal(run.code, 2, JSON.stringify(args))
      assert.equal(run.stdout, '')
      assert.equal(run.stderr.trim(), USAGE)
    }
    assert.equal(em.requests.length, 0)
  })
})

// Issue 18, defect 7: doctor is what people run, and paste from, when something is wrong.
describe('doctor: URLs without query values or user information', () => {
  const password = `MARKER-URI-PASSWORD-${m.secretKey.split('-').at(-1)}`

  test('a FULL_URI and a proxy with user information and a query: scheme, host, port and path only', TEST_TIMEOUT, async () => {
    const port = new URL(em.url).port
    const vars = {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://svc:${password}@127.0.0.1:${port}/v1/credentials?sig=${m.uriQuery}`,
      AWS_REGION: 'us-east-2',
      HTTPS_PROXY: `http://alice:${password}@127.0.0.1:1`,
    }
    const shown = `container: http://127.0.0.1:${port}/v1/credentials?… (credentials hidden)`
    const run = await doctor(vars, ['doctor'], { extraMarkers: { password } })
    assert.equal(run.code, 1, run.stdout)
    const report = parseReport(run.stdout)
    assert.ok(report.chain.some((l) => l.detail === shown), `${shown} not in:\n${run.stdout}`)
    assert.equal(report.proxy, 'http://127.0.0.1:1 (credentials hidden) (from HTTPS_PROXY)')
    assert.match(stepOf(report, 'credentials').detail, /^CONFIG_INVALID: .*must not carry user information/)
    const json = JSON.parse((await doctor(vars, ['doctor', '--json'], { extraMarkers: { password } })).stdout)
    assert.equal(json.chain.find((l) => l.link === 'container').detail, shown)
    assert.equal(em.requests.length, 0, 'a FULL_URI with user information is never used')
  })

  test('a token_url and an impersonation URL with a query: the config step shows neither query', TEST_TIMEOUT, async () => {
    const config = configFile({
      token_url: `${em.url}/v1/token?key=${m.uriQuery}`,
      service_account_impersonation_url: `http://svc:${password}@127.0.0.1:1/v1/projects/-/serviceAccounts/${SA}:generateAccessToken?key=${m.uriQuery}`,
    })
    const bad = await doctor(containerVars(), ['doctor', '--config', config], { extraMarkers: { password } })
    assert.equal(bad.code, 1)
    assert.match(parseReport(bad.stdout).steps[0].detail, /^CONFIG_INVALID: .*service_account_impersonation_url must not carry user information/)
    const good = configFile({ token_url: `${em.url}/v1/token?key=${m.uriQuery}` })
    const run = await doctor(containerVars(), ['doctor', '--config', good])
    const detail = stepOf(parseReport(run.stdout), 'config').detail
    assert.ok(detail.includes(`; token_url ${em.url}/v1/token?…; impersonating ${SA} for 3600 s;`), detail)
  })
})

// Issue 21: `doctor` says when GCE_METADATA_HOST points at a server of ours (its `Server:
// aws-wif-supplier/<version>` header), at another server, or at nothing; informational (exit 0).
describe('doctor: what GCE_METADATA_HOST points at (loopback)', () => {
  const VERSION = JSON.parse(readFileSync(here('../package.json'), 'utf8')).version
  const { GoogleTokenFetcher } = createRequire(import.meta.url)('../index.js')

  /** A plain HTTP server that records what it is asked and answers as a metadata server would, but is not ours. */
  async function plainServer() {
    const seen = []
    const server = createHttpServer((req, res) => {
      seen.push({ method: req.method, url: req.url, flavor: req.headers['metadata-flavor'] })
      res.writeHead(200, { 'metadata-flavor': 'Google', 'content-type': 'text/plain', server: 'Metadata Server for VM' })
      res.end('instance/\nproject/\n')
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    return { seen, host: `127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => server.close(resolve)) }
  }

  /** The doctor's human line and --json object with GCE_METADATA_HOST=host (and the AWS steps passing: exit 0). */
  async function probe(host, extra = {}) {
    const vars = { ...containerVars(), GCE_METADATA_HOST: host, ...extra }
    const run = await doctor(vars, ['doctor'])
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`)
    const json = await doctor(vars, ['doctor', '--json'])
    assert.equal(json.code, 0, json.stderr)
    return { line: parseReport(run.stdout).metadataHost, json: JSON.parse(json.stdout).metadataServer }
  }

  test('a metadata server of ours: named, with its version; nothing fetched for the probe', TEST_TIMEOUT, async () => {
    const fetcher = new GoogleTokenFetcher({ audience: AUDIENCE, tokenUrl: `${em.url}/v1/token`, serviceAccountImpersonationUrl: impersonationUrl(em.url, SA) })
    const server = await fetcher.serveMetadata()
    try {
      const host = `127.0.0.1:${server.port}`
      const { line, json } = await probe(host)
      const detail = `GCE_METADATA_HOST=${host} is aws-wif-supplier's metadata server (version ${VERSION})`
      assert.equal(line, detail)
      assert.deepEqual(json, { host, verdict: 'ours', version: VERSION, httpStatus: 200, detail })
      assert.equal(em.count('sts') + em.count('iam'), 0, 'the probe asks for a listing, never a token')
    } finally {
      await server.close()
    }
  })

  test('a plain HTTP server (even one that sends Metadata-Flavor: Google): answers but is not ours; asked once per run, as clients ask', TEST_TIMEOUT, async () => {
    const plain = await plainServer()
    try {
      const { line, json } = await probe(plain.host)
      const detail = `GCE_METADATA_HOST=${plain.host} answers (HTTP 200) but is not aws-wif-supplier's metadata server`
      assert.equal(line, detail)
      assert.deepEqual(json, { host: plain.host, verdict: 'not-ours', version: null, httpStatus: 200, detail })
      const request = { method: 'GET', url: '/computeMetadata/v1/', flavor: 'Google' }
      assert.deepEqual(plain.seen, [request, request], 'one GET per doctor run (human, then --json)')
    } finally {
      await plain.close()
    }
  })

  test('a closed port: does not answer (ECONNREFUSED); an http:// prefix, as gcp-metadata allows, is the same host', TEST_TIMEOUT, async () => {
    const host = `127.0.0.1:${await unusedPort()}`
    const detail = `GCE_METADATA_HOST=${host} does not answer (ECONNREFUSED)`
    const { line, json } = await probe(`http://${host}`)
    assert.equal(line, detail)
    assert.deepEqual(json, { host, verdict: 'no-answer', version: null, httpStatus: null, detail })
  })

  test('a server that accepts and never answers: does not answer within the 1 s bound, and the doctor ends', TEST_TIMEOUT, async () => {
    const sockets = new Set()
    const silent = createTcpServer((socket) => sockets.add(socket))
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve))
    try {
      const host = `127.0.0.1:${silent.address().port}`
      const run = await doctor({ ...containerVars(), GCE_METADATA_HOST: host }, ['doctor']) // doctor() fails the test if the run does not end
      assert.equal(run.code, 0, run.stdout)
      assert.equal(parseReport(run.stdout).metadataHost, `GCE_METADATA_HOST=${host} does not answer (no answer within 1000 ms)`)
      assert.ok(sockets.size >= 1, 'the probe connected')
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => silent.close(resolve))
    }
  })

  test('unset (GCE_METADATA_IP alone does not count): no line, null, nothing probed; a value with user information: invalid, not shown', TEST_TIMEOUT, async () => {
    const plain = await plainServer()
    try {
      const run = await doctor({ ...containerVars(), GCE_METADATA_IP: plain.host }, ['doctor'])
      assert.equal(run.code, 0, run.stdout)
      assert.equal(parseReport(run.stdout).metadataHost, undefined)
      assert.equal(JSON.parse((await doctor({ ...containerVars(), GCE_METADATA_IP: plain.host }, ['doctor', '--json'])).stdout).metadataServer, null)
      assert.deepEqual(plain.seen, [], 'nothing was probed')

      const password = `MARKER-MD-PASSWORD-${m.secretKey.split('-').at(-1)}`
      const bad = await doctor({ ...containerVars(), GCE_METADATA_HOST: `http://u:${password}@${plain.host}` }, ['doctor'], { extraMarkers: { password } })
      assert.equal(bad.code, 0, bad.stdout)
      assert.equal(parseReport(bad.stdout).metadataHost, 'GCE_METADATA_HOST is set but is not host[:port] (its value is not shown): metadata clients cannot use it')
      assert.deepEqual(plain.seen, [], 'an invalid value is not probed')
    } finally {
      await plain.close()
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Runtimes whose credentials live at link-local addresses: inside a private network namespace.

const unavailable = netnsUnavailableReason()
const NETNS = { timeout: 60_000, skip: unavailable ? `network namespace unavailable: ${unavailable}` : false }

describe('doctor: the google-auth-library copies of the application in the working directory', () => {
  /** A fresh application folder (its package.json written), removed after the test. */
  function appFolder(t) {
    const app = mkdtempSync(join(tmpdir(), 'aws-wif-doctor-app-'))
    t.after(() => rmSync(app, { recursive: true, force: true }))
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'the-app', dependencies: { 'google-auth-library': '^10.9.1' } }))
    return app
  }

  /** A package.json at `app`/`path` (a folder made as needed); `dependsOnGal`: its google-auth-library range, or none. */
  function plant(app, path, name, version, { dependsOnGal, field = 'dependencies' } = {}) {
    mkdirSync(join(app, path), { recursive: true })
    writeFileSync(join(app, path, 'package.json'), JSON.stringify({ name, version, ...(dependsOnGal ? { [field]: { 'google-auth-library': dependsOnGal } } : {}) }))
  }

  /** The app of issue 20: its own google-auth-library 10, and @google-cloud/storage 8.4 with a nested 11. */
  function nestedApp(app) {
    plant(app, 'node_modules/google-auth-library', 'google-auth-library', '10.9.1')
    plant(app, 'node_modules/@google-cloud/storage', '@google-cloud/storage', '8.4.0', { dependsOnGal: '^11.3.4' })
    plant(app, 'node_modules/@google-cloud/storage/node_modules/google-auth-library', 'google-auth-library', '11.3.4')
    plant(app, 'node_modules/@google-cloud/common', '@google-cloud/common', '6.1.0', { dependsOnGal: '^10.0.0' })
    plant(app, 'node_modules/firebase-admin', 'firebase-admin', '13.0.0', { dependsOnGal: '^10.0.0', field: 'optionalDependencies' })
    plant(app, 'node_modules/gcp-metadata', 'gcp-metadata', '8.1.2')
  }

  /** The doctor's human report and JSON, run in `app` (with a passing AWS side: exit 0 unless told). */
  async function doctorIn(app, { exit = 0 } = {}) {
    const human = await doctor(containerVars(), ['doctor'], { cwd: app })
    assert.equal(human.code, exit, human.stdout + human.stderr)
    assert.equal(human.stderr, '')
    const json = await doctor(containerVars(), ['doctor', '--json'], { cwd: app })
    assert.equal(json.code, exit, json.stdout + json.stderr)
    return { report: parseReport(human.stdout), out: JSON.parse(json.stdout).googleAuthLibrary }
  }

  test('an app on google-auth-library 10 with Storage 8.4 (its own 11): both copies with their users, a WARN with the fixes, exit status unchanged', TEST_TIMEOUT, async (t) => {
    const app = appFolder(t)
    nestedApp(app)
    const { report, out } = await doctorIn(app)
    assert.equal(report.application, `${app} (the-app): the working directory; run doctor in the application's folder`)
    assert.deepEqual(report.authLibraries, [
      '10.9.1 at node_modules/google-auth-library, used by the application, @google-cloud/common@6.1.0, firebase-admin@13.0.0',
      '11.3.4 at node_modules/@google-cloud/storage/node_modules/google-auth-library, used by @google-cloud/storage@8.4.0',
    ])
    assert.deepEqual(labels(report), [['region', 'PASS'], ['credentials', 'PASS']], 'a warning is not a step')
    assert.equal(report.warnings.length, 1)
    const [warning] = report.warnings
    assert.equal(warning.topic, 'auth_library')
    assert.match(warning.detail, /^2 copies of google-auth-library: a client built on one copy is not an instance of another copy's classes/)
    assert.deepEqual(warning.fixes, [
      "for @google-cloud/storage (google-auth-library 11.3.4): fetcher.authClient({ googleAuthLibrary: require('node:module').createRequire(require.resolve('@google-cloud/storage'))('google-auth-library') }); with the drop-in supplier, build the AwsClient from that copy",
      'or one copy for all: in package.json, "google-auth-library": "^11.3.4" (a version every library accepts) and "overrides": { "google-auth-library": "$google-auth-library" }, then npm install',
    ])
    assert.deepEqual(out.application, { dir: app, name: 'the-app' })
    assert.deepEqual(out.copies, [
      { version: '10.9.1', path: 'node_modules/google-auth-library', usedBy: ['the application', '@google-cloud/common@6.1.0', 'firebase-admin@13.0.0'] },
      { version: '11.3.4', path: 'node_modules/@google-cloud/storage/node_modules/google-auth-library', usedBy: ['@google-cloud/storage@8.4.0'] },
    ])
    assert.deepEqual([out.scanned, out.truncated], [6, false])
    assert.deepEqual(out.warning, { message: warning.detail, fixes: warning.fixes })
  })

  test('one copy for all (deduplicated, or an overrides entry): listed, no warning', TEST_TIMEOUT, async (t) => {
    const app = appFolder(t)
    plant(app, 'node_modules/google-auth-library', 'google-auth-library', '11.3.4')
    plant(app, 'node_modules/@google-cloud/storage', '@google-cloud/storage', '8.4.0', { dependsOnGal: '^11.3.4' })
    const { report, out } = await doctorIn(app)
    assert.deepEqual(report.authLibraries, ['11.3.4 at node_modules/google-auth-library, used by the application, @google-cloud/storage@8.4.0'])
    assert.deepEqual(report.warnings, [])
    assert.equal(out.warning, null)
  })

  test('the working directory is the application: run elsewhere, its copies are not listed, and the report says where it looked', TEST_TIMEOUT, async (t) => {
    const app = appFolder(t)
    nestedApp(app)
    const elsewhere = appFolder(t)
    rmSync(join(elsewhere, 'package.json'))
    const { report, out } = await doctorIn(elsewhere)
    assert.equal(report.application, `${elsewhere}: the working directory; run doctor in the application's folder`)
    assert.deepEqual(report.authLibraries, ['none: no google-auth-library resolves from the application or the packages in its node_modules'])
    assert.deepEqual(out, { application: { dir: elsewhere, name: null }, copies: [], scanned: 0, truncated: false, warning: null })
  })

  test('pnpm: packages linked from node_modules/.pnpm resolve their dependencies beside their real folders', TEST_TIMEOUT, async (t) => {
    const app = appFolder(t)
    const store = (id, name) => `node_modules/.pnpm/${id}/node_modules/${name}`
    plant(app, store('google-auth-library@10.9.1', 'google-auth-library'), 'google-auth-library', '10.9.1')
    plant(app, store('google-auth-library@11.3.4', 'google-auth-library'), 'google-auth-library', '11.3.4')
    plant(app, store('@google-cloud+storage@8.4.0', '@google-cloud/storage'), '@google-cloud/storage', '8.4.0', { dependsOnGal: '^11.3.4' })
    plant(app, store('google-gax@5.0.0', 'google-gax'), 'google-gax', '5.0.0', { dependsOnGal: '^10.0.0' })
    const link = (target, path) => {
      mkdirSync(dirname(join(app, path)), { recursive: true })
      symlinkSync(join(app, target), join(app, path), 'dir')
    }
    link(store('google-auth-library@10.9.1', 'google-auth-library'), 'node_modules/google-auth-library')
    link(store('@google-cloud+storage@8.4.0', '@google-cloud/storage'), 'node_modules/@google-cloud/storage')
    // storage's dependencies, beside it in the store: its google-auth-library 11 and (transitively) google-gax.
    link(store('google-auth-library@11.3.4', 'google-auth-library'), store('@google-cloud+storage@8.4.0', 'google-auth-library'))
    link(store('google-gax@5.0.0', 'google-gax'), store('@google-cloud+storage@8.4.0', 'google-gax'))
    link(store('google-auth-library@10.9.1', 'google-auth-library'), store('google-gax@5.0.0', 'google-auth-library'))
    const { out } = await doctorIn(app)
    assert.deepEqual(out.copies, [
      { version: '10.9.1', path: store('google-auth-library@10.9.1', 'google-auth-library'), usedBy: ['the application', 'google-gax@5.0.0'] },
      { version: '11.3.4', path: store('google-auth-library@11.3.4', 'google-auth-library'), usedBy: ['@google-cloud/storage@8.4.0'] },
    ])
    assert.match(out.warning.fixes[0], /^for @google-cloud\/storage \(google-auth-library 11\.3\.4\): /)
  })

  test('an odd node_modules (broken links, a loop, files for folders, invalid JSON, names that are not package names): skipped, never fatal', TEST_TIMEOUT, async (t) => {
    const app = appFolder(t)
    nestedApp(app)
    const nm = join(app, 'node_modules')
    symlinkSync(join(app, 'nowhere'), join(nm, 'broken-link'))
    symlinkSync(app, join(nm, 'loop'), 'dir') // node_modules/loop/node_modules/loop/...
    symlinkSync(nm, join(nm, '@google-cloud', 'storage', 'node_modules', 'up'), 'dir')
    writeFileSync(join(nm, 'a-file'), 'not a package')
    writeFileSync(join(nm, '@a-file-scope'), 'not a scope')
    mkdirSync(join(nm, 'no-package-json'))
    mkdirSync(join(nm, 'bad-json'))
    writeFileSync(join(nm, 'bad-json', 'package.json'), '{"name": "bad-json", "dependencies": {"google-auth-library"')
    plant(app, 'node_modules/null-json', 'x', '1.0.0')
    writeFileSync(join(nm, 'null-json', 'package.json'), 'null')
    plant(app, 'node_modules/odd-deps', 'odd-deps', '1.0.0')
    writeFileSync(join(nm, 'odd-deps', 'package.json'), JSON.stringify({ name: 'odd-deps', dependencies: 'google-auth-library' }))
    plant(app, 'node_modules/escape', '\u001b[31mred', '1.0.0', { dependsOnGal: '^10' })
    plant(app, 'node_modules/odd-version', 'odd-version', '\u001b[31m1', { dependsOnGal: '^10' })
    const { report, out } = await doctorIn(app)
    assert.deepEqual(out.copies.map((c) => [c.version, c.path, c.usedBy]), [
      ['10.9.1', 'node_modules/google-auth-library', ['the application', '@google-cloud/common@6.1.0', 'firebase-admin@13.0.0', 'odd-version@unknown']],
      ['11.3.4', 'node_modules/@google-cloud/storage/node_modules/google-auth-library', ['@google-cloud/storage@8.4.0']],
    ])
    assert.equal(out.truncated, false)
    assert.equal(report.warnings.length, 1)
  })

  test('a working directory that was removed: the libraries are not listed, and the rest of the report is as usual', TEST_TIMEOUT, async (t) => {
    const gone = appFolder(t)
    // A shell enters the folder, removes it, then runs the doctor there.
    mkdirSync(join(gone, 'sub'))
    const child = spawn('sh', ['-c', 'cd "$1" && rmdir "$1" && exec "$2" "$3" doctor --json', 'sh', join(gone, 'sub'), process.execPath, BIN], { env: hermeticEnv(containerVars()), stdio: ['ignore', 'pipe', 'pipe'] })
    const run = await collectChild(child, 40_000)
    assert.equal(run.code, 0, run.stdout + run.stderr)
    const out = JSON.parse(run.stdout)
    assert.deepEqual(out.steps.map((s) => [s.step, s.status]), [['region', 'ok'], ['credentials', 'ok']])
    assert.deepEqual(out.googleAuthLibrary.application, { dir: null, name: null })
    assert.match(out.googleAuthLibrary.error, /ENOENT/)
  })

  test(`at most ${galCopies.MAX_PACKAGES} package folders are read: the rest is left out, and the report says so`, TEST_TIMEOUT, async (t) => {
    const app = appFolder(t)
    nestedApp(app)
    // Breadth first: the planted top level is read before these nested folders, which overflow the
    // cap before the level below them (with a user of google-auth-library) is reached.
    for (let i = 0; i < galCopies.MAX_PACKAGES; i++) plant(app, `node_modules/gcp-metadata/node_modules/p${i}`, `p${i}`, '1.0.0')
    plant(app, 'node_modules/gcp-metadata/node_modules/p0/node_modules/late-user', 'late-user', '1.0.0', { dependsOnGal: '^10' })
    const { report, out } = await doctorIn(app)
    assert.deepEqual([out.scanned, out.truncated], [galCopies.MAX_PACKAGES, true])
    assert.equal(report.authLibraries.at(-1), `(the first ${galCopies.MAX_PACKAGES} packages of node_modules only: the list may be incomplete)`)
    assert.ok(!out.copies.some((c) => c.usedBy.includes('late-user@1.0.0')), 'a package past the cap is not read')
    assert.equal(out.copies.length, 2)
  })
})

describe('doctor: link-local runtimes (private network namespace)', () => {
  /** Run the doctor in a namespace next to an emulator on the link-local addresses. */
  async function netnsDoctor(scenario, { extraMarkers = {} } = {}) {
    const run = await runInNetns(here('fixtures/doctor-netns.mjs'), { env: hermeticEnv({ WIF_SCENARIO: JSON.stringify(scenario) }), timeoutMs: 50_000 })
    assert.equal(run.timedOut, false, `fixture timed out\n${run.stderr}`)
    assert.equal(run.code, 0, run.stderr)
    const result = lastJsonLine(run.stdout)
    assert.ok(result, run.stdout)
    assert.equal(result.fatal, undefined, JSON.stringify(result.fatal))
    assert.equal(result.timedOut, false)
    assert.deepEqual(leakedMarkers(`${result.stdout}\n${result.stderr}`, { ...m, ...extraMarkers }), [], `marker secret in the doctor output:\n${result.stdout}`)
    assert.ok(!/ya29\.|Signature=[0-9a-f]{64}/.test(result.stdout + result.stderr), 'a token or signature in the doctor output')
    return { ...result, report: parseReport(result.stdout) }
  }

  const routes = (result, route) => result.requests.filter((r) => r.route === route)
  const relative = '/v2/credentials/6f3c0b5e-0000-4000-8000-000000000000'

  test('App Runner (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI only): credentials from 169.254.170.2', NETNS, async () => {
    const result = await netnsDoctor({ vars: { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: relative, AWS_REGION: 'us-east-1' }, emulatorConfig: { credentials: CONTAINER_CREDENTIALS } })
    assert.equal(result.code, 0, result.stdout)
    assert.equal(result.report.runtime, 'ECS or App Runner (no task metadata variables) (evidence: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)')
    assert.deepEqual(labels(result.report), STEPS.map((s) => [s, 'PASS']))
    assert.match(stepOf(result.report, 'credentials').detail, /^temporary credentials from container, access key ASIA…NER1, account 123456789012, expire /)
    assert.deepEqual(routes(result, 'container').map((r) => [r.listener, r.path, r.status]), [['169.254.170.2:80', relative, 200]])
    assert.equal(routes(result, 'sts')[0].verdict.ok, true)
  })

  test('App Runner whose credentials endpoint answers 500 → credentials FAIL with a code, exit 1', NETNS, async () => {
    const result = await netnsDoctor({ vars: { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: relative, AWS_REGION: 'us-east-1' }, always: { container: { status: 500 } } })
    assert.equal(result.code, 1, result.stdout)
    assert.equal(result.report.runtime, 'ECS or App Runner (no task metadata variables) (evidence: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)')
    const step = assertFailsAt(result.report, 'credentials', 'CREDENTIALS_ENDPOINT_ERROR')
    assert.ok(CREDENTIAL_CODES.includes(step.detail.split(':')[0]))
    assert.match(step.detail, /169\.254\.170\.2/)
    assert.ok(routes(result, 'container').every((r) => r.listener === '169.254.170.2:80' && r.status === 500))
  })

  test('ECS on Fargate (RELATIVE_URI + ECS_CONTAINER_METADATA_URI_V4): region from task metadata', NETNS, async () => {
    const result = await netnsDoctor({
      vars: { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: relative, ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/ecs-metadata/v4/abc', AWS_EXECUTION_ENV: 'AWS_ECS_FARGATE' },
      emulatorConfig: { region: 'eu-west-3', credentials: CONTAINER_CREDENTIALS },
    })
    assert.equal(result.code, 0, result.stdout)
    assert.equal(result.report.runtime, 'ECS on Fargate (also ECS Express Mode) (evidence: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, ECS_CONTAINER_METADATA_URI_V4, AWS_EXECUTION_ENV)')
    assert.deepEqual(labels(result.report), STEPS.map((s) => [s, 'PASS']))
    assert.equal(stepOf(result.report, 'region').detail, 'eu-west-3 (from ECS task metadata)')
    assert.deepEqual(routes(result, 'taskMetadata').map((r) => [r.listener, r.path, r.status]), [['169.254.170.2:80', '/ecs-metadata/v4/abc/task', 200]])
    assert.equal(routes(result, 'sts')[0].verdict.region, 'eu-west-3')
  })

  for (const [executionEnv, runtime] of [['AWS_ECS_EC2', 'ECS on EC2'], [undefined, 'ECS / Fargate']]) {
    test(`ECS with AWS_EXECUTION_ENV=${executionEnv ?? '(unset)'}: runtime "${runtime}"`, NETNS, async () => {
      const vars = { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: relative, ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/ecs-metadata/v4/abc', AWS_REGION: 'us-west-2' }
      if (executionEnv) vars.AWS_EXECUTION_ENV = executionEnv
      const result = await netnsDoctor({ vars })
      assert.equal(result.code, 0, result.stdout)
      const evidence = ['AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'ECS_CONTAINER_METADATA_URI_V4', ...(executionEnv ? ['AWS_EXECUTION_ENV'] : [])]
      assert.equal(result.report.runtime, `${runtime} (evidence: ${evidence.join(', ')})`)
      assert.deepEqual(labels(result.report), STEPS.map((s) => [s, 'PASS']))
      assert.equal(stepOf(result.report, 'region').detail, 'us-west-2 (from AWS_REGION)')
      assert.equal(routes(result, 'taskMetadata').length, 0, 'AWS_REGION wins over task metadata')
    })
  }

  test('EKS Pod Identity (FULL_URI 169.254.170.23 + token file): the evidence names the variables', NETNS, async () => {
    const tokenFile = tempFile('eks-pod-identity-token', `${m.containerAuth}\n`)
    const result = await netnsDoctor({
      vars: { AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials', AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile, AWS_REGION: 'us-west-2' },
      emulatorConfig: { containerAuthToken: m.containerAuth, credentials: CONTAINER_CREDENTIALS },
    })
    assert.equal(result.code, 0, result.stdout)
    assert.equal(result.report.runtime, 'EKS Pod Identity (evidence: AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)')
    assert.deepEqual(labels(result.report), STEPS.map((s) => [s, 'PASS']))
    assert.deepEqual(routes(result, 'container').map((r) => [r.listener, r.path, r.status, r.authorization]), [['169.254.170.23:80', '/v1/credentials', 200, m.containerAuth]])
  })

  test('EKS Pod Identity with the wrong token → credentials FAIL, the token never printed', NETNS, async () => {
    const tokenFile = tempFile('eks-wrong-token', `${m.containerAuth}-stale\n`)
    const result = await netnsDoctor(
      {
        vars: { AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials', AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile, AWS_REGION: 'us-west-2' },
        emulatorConfig: { containerAuthToken: m.containerAuth },
      },
      { extraMarkers: { staleToken: `${m.containerAuth}-stale` } },
    )
    assert.equal(result.code, 1, result.stdout)
    assert.equal(result.report.runtime, 'EKS Pod Identity (evidence: AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)')
    const step = assertFailsAt(result.report, 'credentials', 'CREDENTIALS_ENDPOINT_ERROR')
    assert.match(step.detail, /HTTP 400/)
  })
})
