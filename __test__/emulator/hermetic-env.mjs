// Hermetic process environments for tests: no ambient AWS or Google configuration, no proxies, no
// IMDS. An AWS SDK in such an environment can only reach what a test points it at (the emulator).

/** Variables that configure AWS / Google SDKs or the network path; none may leak into a test. */
const AMBIENT = /^(AWS_|ECS_|GOOGLE_|GCLOUD_|CLOUDSDK_|GCE_METADATA_|METADATA_SERVER_DETECTION$|BIGQUERY_EMULATOR_HOST$|FAST_QUERY_PATH$)|^(https?_proxy|all_proxy|no_proxy)$/i

/** Settings every hermetic process gets. Inside a private network namespace a test may drop the first. */
export const HERMETIC_DEFAULTS = {
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-wif-supplier-test/config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-wif-supplier-test/credentials',
}

/**
 * A copy of `base` without ambient AWS/Google/proxy variables, plus HERMETIC_DEFAULTS, plus `extra`.
 * A key in `extra` whose value is undefined or null is removed (e.g. {AWS_EC2_METADATA_DISABLED: undefined}).
 */
export function hermeticEnv(extra = {}, base = process.env) {
  const env = Object.fromEntries(Object.entries(base).filter(([key]) => !AMBIENT.test(key)))
  for (const [key, value] of Object.entries({ ...HERMETIC_DEFAULTS, ...extra })) {
    if (value == null) delete env[key]
    else env[key] = String(value)
  }
  return env
}

/** Make the current process hermetic in place (call at the top of a test file, before any SDK use). */
export function makeProcessHermetic(extra = {}) {
  const env = hermeticEnv(extra)
  for (const key of Object.keys(process.env)) if (!(key in env)) delete process.env[key]
  Object.assign(process.env, env)
}
