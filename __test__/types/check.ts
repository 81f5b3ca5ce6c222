// Compiles under `tsc --strict`: the supplier is google-auth-library's AwsSecurityCredentialsSupplier
// and goes straight into AwsClient. Checked by __test__/typings.test.mjs; never executed.
import { AwsClient, AwsSecurityCredentialsSupplier } from 'google-auth-library'
import { ContainerAwsCredentialsSupplier, ContainerAwsCredentialsSupplierOptions, AwsSecurityCredentials } from '../../index'

const options: ContainerAwsCredentialsSupplierOptions = { region: 'eu-west-3', refreshMarginSeconds: 300, timeoutMs: 10_000 }
const supplier: AwsSecurityCredentialsSupplier = new ContainerAwsCredentialsSupplier(options)
const defaults: AwsSecurityCredentialsSupplier = new ContainerAwsCredentialsSupplier()

export const client = new AwsClient({
  audience: '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/pool/providers/aws',
  subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
  token_url: 'https://sts.googleapis.com/v1/token',
  service_account_impersonation_url:
    'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@my-project.iam.gserviceaccount.com:generateAccessToken',
  aws_security_credentials_supplier: new ContainerAwsCredentialsSupplier(),
})

export async function use(): Promise<string> {
  const region: string = await new ContainerAwsCredentialsSupplier().getAwsRegion()
  const creds: AwsSecurityCredentials = await new ContainerAwsCredentialsSupplier().getAwsSecurityCredentials()
  const key: string = creds.accessKeyId
  const token: string | undefined = creds.token
  return `${region}${key}${token ?? ''}${String(supplier)}${String(defaults)}`
}
