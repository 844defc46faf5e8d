'use strict';

// Fails `sls package` / `sls deploy` at once, in one line, when the stage parameters name a
// Redshift target the pipeline cannot sign in to — instead of a stack that deploys and then
// fails every load. A provisioned cluster (redshiftTarget=cluster) is reached either with IAM
// credentials for one database user (redshiftDbUser: redshift:GetClusterCredentials needs a
// DbUser) or with the secret of one (existingSecretArn); with neither, the Data API has no
// user to run the statements as
// (https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html).
//
// It reads the CloudFormation parameters' defaults in the resolved configuration, which is
// where the stage parameters (`--param`, else serverless.yml's params:) end up and what the
// stack deploys with.

class RedshiftTargetPlugin {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    this.hooks = {
      // The earliest packaging step: nothing has been written or removed yet.
      'before:package:cleanup': () => this.check(),
      'before:deploy:deploy': () => this.check(),
    };
  }

  parameter(name) {
    const resources = this.serverless.service.resources || {};
    const parameter = (resources.Parameters || {})[name] || {};
    const value = parameter.Default;
    return value == null ? '' : String(value).trim();
  }

  check() {
    if (this.parameter('RedshiftTarget') !== 'cluster') return;
    if (this.parameter('RedshiftDbUser') || this.parameter('ExistingSecretArn')) return;
    throw new this.serverless.classes.Error(
      'redshiftTarget=cluster needs redshiftDbUser (IAM credentials) or existingSecretArn ' +
        '(a database user\'s secret): without either no load can sign in. Add ' +
        '--param="redshiftDbUser=<database user>" or --param="existingSecretArn=<secret ARN>".',
    );
  }
}

module.exports = RedshiftTargetPlugin;
