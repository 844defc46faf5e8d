'use strict';

// After `sls deploy`, says in one line when the notices topic has no subscriber from this stack:
// with the stage parameter alertEmail empty (the default) the pipeline's notices and its alarms
// (serverless.yml, "alarms") are published to a topic nobody reads. The line names the topic
// and the two ways to subscribe. Nothing is printed when alertEmail is set: the stack subscribes
// that address (NotificationsEmailSubscription), and SNS mails it a confirmation link.

const { stackOutputs } = require('./aws-clients');

const TOPIC_OUTPUT = 'NotificationsTopicArn';

// The address the deployed stack subscribes: the AlertEmail parameter's default, which the
// framework resolved from --param="alertEmail=..." or params.default.
function alertEmail(serverless) {
  const compiled = serverless.service.provider.compiledCloudFormationTemplate || {};
  const resources = serverless.service.resources || {};
  for (const template of [compiled, resources]) {
    const parameter = (template.Parameters || {}).AlertEmail;
    if (parameter && parameter.Default !== undefined) return String(parameter.Default).trim();
  }
  return '';
}

function noSubscriberMessage(stage, topicArn) {
  const topic = topicArn || `<${TOPIC_OUTPUT} output>`;
  return (
    `Notices and alarms of stage ${stage} reach no one: alertEmail is empty. Subscribe with ` +
    `sls deploy --stage ${stage} --param="alertEmail=you@example.com", or ` +
    `aws sns subscribe --topic-arn ${topic} --protocol email --notification-endpoint you@example.com`
  );
}

class AlertEmailPlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options;
    this.log = log || { notice: console.log }; // eslint-disable-line no-console
    this.hooks = {
      'after:deploy:deploy': () => this.warn(),
    };
  }

  async topicArn() {
    try {
      return (await stackOutputs(this.serverless))[TOPIC_OUTPUT] || null;
    } catch (error) {
      return null; // the line still says how to subscribe, with the output's name
    }
  }

  async warn() {
    if (alertEmail(this.serverless)) return null;
    const stage = this.serverless.getProvider('aws').getStage();
    const message = noSubscriberMessage(stage, await this.topicArn());
    this.log.notice(message);
    return message;
  }
}

module.exports = AlertEmailPlugin;
module.exports.alertEmail = alertEmail;
module.exports.noSubscriberMessage = noSubscriberMessage;
