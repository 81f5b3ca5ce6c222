// Compiles under `tsc --strict`: the native fetcher's typings, the way the README uses them.
// Checked by __test__/typings.test.mjs; never executed.
import { GoogleTokenFetcher, GoogleAccessToken, GoogleTokenFetcherOptions, DiagnosticStep, MetadataServer, diagnoseAws } from '../../index'

const options: GoogleTokenFetcherOptions = {
  audience: '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/pool/providers/aws',
  serviceAccountImpersonationUrl:
    'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@my-project.iam.gserviceaccount.com:generateAccessToken',
  serviceAccountImpersonation: { tokenLifetimeSeconds: 3600 },
  scopes: ['https://www.googleapis.com/auth/bigquery'],
  region: 'us-east-1',
  backgroundRefresh: true,
}

export async function use(): Promise<string> {
  const fetcher = new GoogleTokenFetcher(options)
  const fromFile = GoogleTokenFetcher.fromCredentialConfig('/etc/gcp/wif.json', { timeoutMs: 5000 })
  const fromObject = GoogleTokenFetcher.fromCredentialConfig({ type: 'external_account' })
  const fromEnv = GoogleTokenFetcher.fromEnv()
  const token: GoogleAccessToken = await fetcher.getAccessToken()
  const expires: number = token.expiresAt
  const headers: Record<string, string> = await fromFile.getRequestHeaders()
  const steps: DiagnosticStep[] = [...(await fromObject.diagnose()), ...(await diagnoseAws({ region: 'eu-west-1' }))]
  const failed: string[] = steps.filter((s) => s.status === 'failed').map((s) => `${s.step}: ${s.code ?? ''} ${s.hint ?? ''}`)
  // @ts-expect-error audience is required
  new GoogleTokenFetcher({})
  // @ts-expect-error the token is a string
  const n: number = (await fromEnv.getAccessToken()).token
  const server: MetadataServer = await fromEnv.serveMetadata({ host: '127.0.0.1', port: 0, projectId: 'my-project' })
  process.env.GCE_METADATA_HOST = `${server.host}:${server.port}`
  await (await fetcher.serveMetadata()).close()
  // @ts-expect-error the port is a number
  await fetcher.serveMetadata({ port: '8080' })
  // @ts-expect-error serveMetadata resolves once listening: await it before reading url
  const u: string = fetcher.serveMetadata().url
  await server.close()
  return `${token.token}${expires}${headers.authorization}${failed.join()}${n}${server.url}${u}`
}
