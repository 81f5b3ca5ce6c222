// Compiles under `tsc --strict`: GoogleTokenFetcher.fromCredentialConfig() takes the parsed
// configuration as google-auth-library types it (ExternalAccountClientOptions), as an application's
// own interface, or as the result of JSON.parse; its options may be null, as at run time. Checked by
// __test__/typings.test.mjs against google-auth-library 10 and 11; never executed.
import { readFileSync } from 'node:fs'
import type { ExternalAccountClientOptions } from 'google-auth-library'
import { GoogleTokenFetcher } from '../../index'

/** An application's own shape of the file gcloud writes (an interface: no index signature). */
interface WifConfig {
  type: 'external_account'
  audience: string
  subject_token_type: string
  token_url: string
  service_account_impersonation_url?: string
  credential_source: { environment_id: string; regional_cred_verification_url: string }
}

export function use(galOptions: ExternalAccountClientOptions, app: WifConfig): GoogleTokenFetcher[] {
  const parsed: unknown = JSON.parse(readFileSync('/etc/gcp/wif.json', 'utf8'))
  return [
    GoogleTokenFetcher.fromCredentialConfig(galOptions),
    GoogleTokenFetcher.fromCredentialConfig(app, { timeoutMs: 5000 }),
    GoogleTokenFetcher.fromCredentialConfig(parsed as object, null),
    GoogleTokenFetcher.fromCredentialConfig('/etc/gcp/wif.json', undefined),
    // @ts-expect-error a number is neither a path nor a configuration object
    GoogleTokenFetcher.fromCredentialConfig(42),
  ]
}
