'use strict';

// The configuration variable source ${toNumber(<value>)}: <value> as a JSON number, for the
// places of serverless.yml (and the files it includes) that must hold a number, not a string.
//
// Why: a stage parameter passed on the command line, `--param "name=value"`, is always a
// string (osls keeps the text after "=": lib/configuration/variables/sources/instance-dependent/
// param.js), while the same parameter from `params:` in serverless.yml keeps its YAML type. A
// Choice rule's NumericGreaterThanEquals must be a number (the Amazon States Language:
// https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html), so
//   NumericGreaterThanEquals: ${toNumber(${param:sparkThresholdBytes})}
// holds the same number whichever way the parameter was given, and a value that is no number
// stops `sls package` / `sls deploy` here, naming it, instead of every execution failing later.
//
// Like the framework's own ${strToBool(...)}; a plugin's configurationVariablesSources is how
// osls lets a plugin add a variable source (lib/configuration/variables/sources/
// resolve-external-plugin-sources.js).

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

class ToNumberPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.configurationVariablesSources = {
      toNumber: { resolve: ({ params }) => ({ value: this.toNumber(params) }) },
    };
  }

  toNumber(params) {
    const fail = (message) => {
      throw new this.serverless.classes.Error(`\${toNumber(...)}: ${message}`);
    };
    if (!params || params.length !== 1 || params[0] == null) {
      fail('give it exactly one value, e.g. ${toNumber(${param:name})}');
    }
    const [input] = params;
    if (typeof input === 'number' && Number.isFinite(input)) return input;
    const text = typeof input === 'string' ? input.trim() : '';
    if (!NUMBER.test(text)) fail(`${JSON.stringify(input)} is not a number`);
    return Number(text);
  }
}

module.exports = ToNumberPlugin;
