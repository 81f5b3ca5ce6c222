// Compiles under `tsc --strict`: authClient(), idTokenClient(), getIdToken() and invalidate() with
// the google-auth-library module passed explicitly, into BigQuery and GoogleAuth of the same
// google-auth-library. Checked by __test__/typings.test.mjs against google-auth-library 10 and 11;
// never executed.
import * as gal from 'google-auth-library'
import { AuthClient, GoogleAuth } from 'google-auth-library'
import { BigQuery } from '@google-cloud/bigquery'
import { GoogleTokenFetcher, GoogleIdToken, AuthClientOptions } from '../../index'

export async function use(): Promise<string> {
  const fetcher = new GoogleTokenFetcher({ audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws' })
  const authClient: AuthClient = fetcher.authClient({ googleAuthLibrary: gal })
  const foreground = fetcher.authClient({ googleAuthLibrary: gal, backgroundRefresh: false })
  const bigquery = new BigQuery({ projectId: 'p', authClient })
  const auth = new GoogleAuth({ authClient: foreground })
  const headers: Headers = await authClient.getRequestHeaders()
  const token: string | null | undefined = (await authClient.getAccessToken()).token
  const res = await authClient.request<{ rows: unknown[] }>({ url: 'https://bigquery.googleapis.com/bigquery/v2/projects/p/queries', method: 'POST' })
  const rows: unknown[] = res.data.rows
  authClient.on('tokens', (t) => {
    const access: string | null | undefined = t.access_token
    const expiry: number | null | undefined = t.expiry_date
  })
  const expiryDate: number | null | undefined = authClient.credentials.expiry_date
  const id: GoogleIdToken = await fetcher.getIdToken('https://svc-abc-uc.a.run.app', { includeEmail: true })
  const expires: number = id.expiresAt
  const run: AuthClient = fetcher.idTokenClient('https://svc-abc-uc.a.run.app', { googleAuthLibrary: gal, includeEmail: true })
  const called = await run.request<{ ok: boolean }>({ url: 'https://svc-abc-uc.a.run.app/' })
  fetcher.invalidate()
  const opts: AuthClientOptions = { backgroundRefresh: true }
  // @ts-expect-error includeEmail is a boolean
  await fetcher.getIdToken('https://svc', { includeEmail: 'yes' })
  // @ts-expect-error the audience is required
  fetcher.idTokenClient()
  // @ts-expect-error an ID token is an object, not a string
  const s: string = await fetcher.getIdToken('https://svc')
  // @ts-expect-error the client is google-auth-library's AuthClient, not `any`
  const n: number = fetcher.authClient({ googleAuthLibrary: gal })
  // @ts-expect-error backgroundRefresh is a boolean
  fetcher.authClient({ googleAuthLibrary: gal, backgroundRefresh: 1 })
  return `${String(bigquery)}${String(auth)}${headers.get('authorization')}${token}${rows.length}${expires}${called.data.ok}${String(opts)}${s}${n}`
}
