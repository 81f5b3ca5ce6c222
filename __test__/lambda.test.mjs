// AWS Lambda (issue 20, section 1): the example handler (examples/lambda/handler.js) run as Lambda
// runs it, in one process across invocations, against the loopback emulator, with each of the two
// ways Lambda hands out the function's role: environment keys, and a FULL_URI on 127.0.0.1 with a
// plain AWS_CONTAINER_AUTHORIZATION_TOKEN. Then a frozen process: the servers close the idle
// keep-alive connections while it is stopped (SIGSTOP), and after SIGCONT a call that needs a
// new token must still succeed (no stale pooled connection may fail it).
//
// Run: node --test __test__/lambda.test.mjs

import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { gcloudCredConfig, here } from './support.mjs'

makeProcessHermetic()

const ROOT = here('..')
const TEST_TIMEOUT = { timeout: 60_000 }
const SA = DEFAULT_CONFIG.serviceAccount
let em
let task
let seq = 0

before(async () => {
  em = await startEmulator()
  // The function's deployment package: the handler, its credential configuration, node_modules.
  task = mkdtempSync(join(tmpdir(), 'aws-wif-lambda-'))
  copyFileSync(join(ROOT, 'examples', 'lambda', 'handler.js'), join(task, 'handler.js'))
  writeFileSync(join(task, 'wif.json'), JSON.stringify(gcloudCredConfig(em.url, { audience: DEFAULT_CONFIG.audience, serviceAccount: SA })))
  mkdirSync(join(task, 'node_modules', '@google-cloud'), { recursive: true })
  symlinkSync(ROOT, join(task, 'node_modules', 'aws-wif-supplier'))
  symlinkSync(join(ROOT, 'node_modules', 'google-auth-library'), join(task, 'node_modules', 'google-auth-library'))
  symlinkSync(join(ROOT, 'node_modules', '@google-cloud', 'bigquery'), join(task, 'node_modules', '@google-cloud', 'bigquery'))
})
beforeEach(() => {
  em.reset()
  em.config = { ...DEFAULT_CONFIG }
})
after(async () => {
  await em?.close()
  if (task) rmSync(task, { recursive: true, force: true })
})

/** The variables Lambda sets for a Node.js 22 function, plus the function's own. */
function lambdaEnv(credentials) {
  return hermeticEnv({
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: 'wif-example',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/wif-example',
    AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9001',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    LAMBDA_TASK_ROOT: task,
    _HANDLER: 'handler.handler',
    GOOGLE_APPLICATION_CREDENTIALS: join(task, 'wif.json'),
    GCP_PROJECT_ID: 'my-project',
    BIGQUERY_API_ENDPOINT: em.url,
    ...credentials,
  })
}

/** Start the runtime stand-in; `invoke(event)` sends one event and resolves its result. */
async function startFunction(env) {
  const child = fork(here('fixtures/lambda-runtime.cjs'), [], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const [first] = await once(child, 'message')
  assert.equal(first, 'ready', stderr)
  const invoke = async (event = {}) => {
    child.send(event)
    const [reply] = await once(child, 'message')
    assert.equal(reply.error, undefined, `${JSON.stringify(reply.error)}\n${stderr}`)
    return reply.value
  }
  return { child, invoke, stop: () => child.kill('SIGKILL') }
}

const environmentKeys = () => {
  const key = { accessKeyId: 'ASIALAMBDAROLEKEY001', secretAccessKey: 'lambda/role/secret/EXAMPLE000000000000000', token: 'lambda-session-token-EXAMPLE' }
  em.registerAwsKey({ ...key, arn: 'arn:aws:sts::123456789012:assumed-role/wif-example-role/wif-example' })
  return { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, AWS_SESSION_TOKEN: key.token }
}
const containerEndpoint = () => ({
  AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v2/credentials/lambda-${++seq}`,
  AWS_CONTAINER_AUTHORIZATION_TOKEN: 'lambda-container-authorization-token',
})

describe('AWS Lambda: the example handler, invoked twice in one process', () => {
  for (const [name, credentials] of [
    ['role keys in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)', environmentKeys],
    ['FULL_URI on 127.0.0.1 with a plain AWS_CONTAINER_AUTHORIZATION_TOKEN', containerEndpoint],
  ]) {
    test(name, TEST_TIMEOUT, async () => {
      const fn = await startFunction(lambdaEnv(credentials()))
      try {
        assert.deepEqual(await fn.invoke(), { principal: SA }, 'cold invocation')
        assert.deepEqual(await fn.invoke(), { principal: SA }, 'warm invocation')
        assert.deepEqual([em.count('sts'), em.count('iam'), em.count('bigquery')], [1, 1, 2], 'the warm invocation reused the token')
        const container = em.requests.filter((r) => r.route === 'container')
        if (name.startsWith('FULL_URI')) {
          assert.equal(container.length, 1)
          assert.equal(container[0].headers.authorization, 'lambda-container-authorization-token')
        } else {
          assert.equal(container.length, 0)
        }
      } finally {
        fn.stop()
      }
    })
  }
})

describe('AWS Lambda: a frozen process', () => {
  test('idle connections closed while the process was stopped: the next call that needs a new token succeeds', TEST_TIMEOUT, async () => {
    const fn = await startFunction(lambdaEnv(containerEndpoint()))
    try {
      assert.deepEqual(await fn.invoke(), { principal: SA })
      assert.ok((await fn.invoke({ audience: 'https://svc-a.example' })).expiresAt > Date.now())
      fn.child.kill('SIGSTOP')
      try {
        assert.ok(em.closeIdleConnections() > 0, 'the function kept connections open')
      } finally {
        fn.child.kill('SIGCONT')
      }
      // A new audience: a new generateIdToken call, from a process whose pooled connections died.
      const thawed = await fn.invoke({ audience: 'https://svc-b.example' })
      assert.ok(thawed.expiresAt > Date.now())
      assert.equal(em.count('iamIdToken'), 2)
      assert.deepEqual(await fn.invoke(), { principal: SA }, 'BigQuery after the thaw')
    } finally {
      fn.stop()
    }
  })
})
