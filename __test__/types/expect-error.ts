// Each `@ts-expect-error` line below must be a type error: if the typings ever accepted one of these
// misuses, `tsc` would fail with "Unused '@ts-expect-error' directive". Checked by typings.test.mjs.
import { ContainerAwsCredentialsSupplier } from '../../index'

export async function misuse(): Promise<void> {
  const supplier = new ContainerAwsCredentialsSupplier()
  // @ts-expect-error the credentials are an object, not a number
  const n: number = await supplier.getAwsSecurityCredentials()
  // @ts-expect-error the region is a string
  const r: number = await supplier.getAwsRegion()
  // @ts-expect-error the promise must be awaited before reading fields
  const k: string = supplier.getAwsSecurityCredentials().accessKeyId
  // @ts-expect-error refreshMarginSeconds is a number
  new ContainerAwsCredentialsSupplier({ refreshMarginSeconds: '300' })
  // @ts-expect-error unknown option
  new ContainerAwsCredentialsSupplier({ regoin: 'us-east-1' })
  void [n, r, k]
}
