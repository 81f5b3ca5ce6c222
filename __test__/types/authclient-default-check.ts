// Compiles under `tsc --strict`: authClient() and idTokenClient() without the module argument are
// typed as the google-auth-library that resolves from this package's typings (in an application:
// its own). Checked by __test__/typings.test.mjs with the root google-auth-library; never executed.
import { AuthClient, GoogleAuth } from 'google-auth-library'
import { BigQuery } from '@google-cloud/bigquery'
import { GoogleTokenFetcher } from '../../index'

export async function use(): Promise<string> {
  const fetcher = GoogleTokenFetcher.fromEnv({ backgroundRefresh: true })
  const authClient: AuthClient = fetcher.authClient()
  const bigquery = new BigQuery({ projectId: 'p', authClient: fetcher.authClient({ backgroundRefresh: false }) })
  const credentials = await new GoogleAuth({ authClient }).getCredentials()
  const run: AuthClient = fetcher.idTokenClient('https://svc-abc-uc.a.run.app')
  // The negative controls: the default return type is google-auth-library's client, not `any`.
  // @ts-expect-error an AuthClient is not a number
  const n: number = fetcher.authClient()
  // @ts-expect-error nor is the ID token client
  const m: number = fetcher.idTokenClient('https://svc')
  return `${String(bigquery)}${credentials.client_email}${String(run)}${n}${m}`
}
