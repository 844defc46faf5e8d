'use strict';

// `sls invoke local` with the environment the deployed function has.
//
// Why: invoke local runs the handler on this machine with provider.environment and the
// function's environment, but it resolves only two kinds of CloudFormation reference there:
// { Ref } (through ListStackResources of the deployed stack) and { Fn::ImportValue } (through
// ListExports); any other value that is an object fails before the handler runs with
// `Unsupported environment variable format` (osls 4.3.1, lib/plugins/aws/invoke-local/
// index.js, resolveConfiguredEnvVars). This service's environment needs Fn::If (the
// Redshift target), Fn::GetAtt and Fn::Sub, which CloudFormation alone resolves. Nor does
// the shell's environment help: invoke local assigns the configured values over
// process.env, and its --env option applies to --docker only.
//
// So for `invoke local` only, every variable whose configured value is such an object takes
// the value it has in the deployed function: GetFunctionConfiguration of the function
// (its Environment.Variables, the values CloudFormation resolved), with the framework's own
// credentials and region. Against `flightpipe local up`, with the environment it prints
// exported (AWS_ENDPOINT_URL and its keys), the call goes to the local stack, which deployed
// the same template. Plain values are left as serverless.yml has them. `sls package` and
// `sls deploy` never run this: the template is unchanged.

const path = require('path');

// The AWS SDK for JavaScript osls itself uses (a dependency of osls, not of this service).
const lambdaSdk = require(
  require.resolve('@aws-sdk/client-lambda', { paths: [path.dirname(require.resolve('osls'))] }),
);

class InvokeLocalEnvironmentPlugin {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options || {};
    // `initialize` runs before every command's lifecycle, so before invoke local reads the
    // environment ('before:invoke:local:loadEnvVars' of the framework's own plugin).
    this.hooks = { initialize: () => this.resolve() };
  }

  isInvokeLocal() {
    const commands = (this.serverless.processedInput || {}).commands || [];
    return commands[0] === 'invoke' && commands[1] === 'local';
  }

  async resolve() {
    if (!this.isInvokeLocal() || !this.options.function) return;
    const service = this.serverless.service;
    const functionObj = service.getFunction(this.options.function);
    const sources = [service.provider.environment || {}, functionObj.environment || {}];
    const names = [
      ...new Set(sources.flatMap((environment) => Object.keys(environment).filter(
        (name) => environment[name] !== null && typeof environment[name] === 'object',
      ))),
    ];
    if (!names.length) return;
    const deployed = await this.deployedEnvironment(functionObj.name, names);
    for (const environment of sources) {
      for (const name of names) {
        if (Object.prototype.hasOwnProperty.call(environment, name)) {
          environment[name] = deployed[name];
        }
      }
    }
  }

  async deployedEnvironment(functionName, names) {
    const provider = this.serverless.getProvider('aws');
    const client = new lambdaSdk.LambdaClient(await provider.getAwsSdkV3Config());
    let variables;
    try {
      const configuration = await client.send(
        new lambdaSdk.GetFunctionConfigurationCommand({ FunctionName: functionName }),
      );
      variables = (configuration.Environment || {}).Variables || {};
    } catch (error) {
      throw new this.serverless.classes.Error(
        `invoke local: ${names.join(', ')} are CloudFormation expressions, resolved from the ` +
          `deployed function ${functionName}, which could not be read (${error.name}: ` +
          `${error.message}). Deploy the stage first, or run \`flightpipe local up\` and ` +
          'export the environment it prints.',
      );
    }
    const missing = names.filter((name) => !(name in variables));
    if (missing.length) {
      throw new this.serverless.classes.Error(
        `invoke local: the deployed function ${functionName} has no ${missing.join(', ')}: ` +
          'deploy this serverless.yml first.',
      );
    }
    return variables;
  }
}

module.exports = InvokeLocalEnvironmentPlugin;
