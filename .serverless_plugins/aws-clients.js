'use strict';

// AWS calls of this project's plugins, made the way osls 4 makes its own: AWS SDK v3 clients
// built from provider.getAwsSdkV3Config() (the deploy's region and credentials). osls 4 removed
// the SDK v2 surface (the provider's request, sdk and getCredentials members): each now
// throws AWS_SDK_V2_SURFACE_REMOVED
// (https://github.com/oss-serverless/osls/blob/4.x/docs/guides/upgrading-to-v4.md).

const { CloudFormationClient, DescribeStacksCommand } = require('@aws-sdk/client-cloudformation');
const { PutObjectCommand, S3Client } = require('@aws-sdk/client-s3');

async function clientConfig(serverless) {
  return serverless.getProvider('aws').getAwsSdkV3Config();
}

// The deployed stack's outputs, {OutputKey: OutputValue}.
async function stackOutputs(serverless) {
  const provider = serverless.getProvider('aws');
  const stackName = provider.naming.getStackName();
  const client = new CloudFormationClient(await clientConfig(serverless));
  const response = await client.send(new DescribeStacksCommand({ StackName: stackName }));
  const outputs = response.Stacks[0].Outputs || [];
  return Object.fromEntries(outputs.map((o) => [o.OutputKey, o.OutputValue]));
}

// Put each [body, key] in the bucket.
async function putObjects(serverless, bucket, objects) {
  const client = new S3Client(await clientConfig(serverless));
  for (const [body, key] of objects) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }
}

module.exports = { stackOutputs, putObjects };
