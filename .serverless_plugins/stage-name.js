'use strict';

// Fails `sls package` / `sls deploy` at once, with a clear message, when the stage would make
// names AWS rejects — instead of CloudFormation failing mid-deploy. The stage is part of the
// Redshift Serverless namespace and workgroup names (`<service>-<stage>`), which must be 3-64
// characters of lowercase letters, digits and hyphens:
// https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateWorkgroup.html
// https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateNamespace.html

const NAME = /^[a-z0-9-]{3,64}$/;
// The data bucket is named <service>-<stage>-<account id>-<region> (serverless.yml, DataBucket):
// S3 bucket names are at most 63 characters
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
const BUCKET_NAME_MAX = 63;
const ACCOUNT_ID_LENGTH = 12;

class StageNamePlugin {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    this.hooks = {
      // The earliest packaging step: nothing has been written or removed yet.
      'before:package:cleanup': () => this.check(),
      'before:deploy:deploy': () => this.check(),
    };
  }

  check() {
    const stage = this.serverless.getProvider('aws').getStage();
    const service = this.serverless.service.service;
    const name = `${service}-${stage}`;
    if (!NAME.test(name)) {
      throw new this.serverless.classes.Error(
        `Stage "${stage}" cannot be deployed: the Redshift Serverless namespace and workgroup ` +
          `would be named "${name}", and AWS accepts only 3-64 lowercase letters, digits and ` +
          'hyphens. Use a stage such as "dev" or "team-a-1".',
      );
    }
    const region = this.serverless.getProvider('aws').getRegion();
    const bucketLength = name.length + 1 + ACCOUNT_ID_LENGTH + 1 + region.length;
    if (bucketLength > BUCKET_NAME_MAX) {
      throw new this.serverless.classes.Error(
        `Stage "${stage}" cannot be deployed in ${region}: the data bucket would be named ` +
          `"${name}-<account id>-${region}", ${bucketLength} characters, and S3 accepts at ` +
          `most ${BUCKET_NAME_MAX}. Use a stage of at most ` +
          `${stage.length - (bucketLength - BUCKET_NAME_MAX)} characters.`,
      );
    }
  }
}

module.exports = StageNamePlugin;
