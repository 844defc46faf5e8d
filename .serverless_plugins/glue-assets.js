'use strict';

// Ships the Glue job's assets with the stack:
// - while packaging (`sls package`, and `sls deploy` which packages first) it builds the
//   project's library wheel with `python -m build --wheel`, so the deployed job always runs the
//   library of this checkout;
// - after `sls deploy` it uploads the wheel and every job's entry script to the data bucket
//   (s3://<bucket>/glue/lib/ and s3://<bucket>/glue/scripts/), reading the bucket name from the
//   stack's outputs and using the framework's own credentials.
// Configuration: custom.glueAssets {scripts, files, wheel, scriptsPrefix, libPrefix, bucketOutput}
// (files: other files the jobs read, such as the Spark job's log4j2.properties, beside the scripts);
// flightpipe_local.deploy.upload_glue_assets reads the same for the local stack.
// The Python used for the build is $FLIGHTPIPE_PYTHON, else .venv/bin/python, else python3.

const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');

const { putObjects, stackOutputs } = require('./aws-clients');

class GlueAssetsPlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options;
    this.log = log || { notice: console.log, info: console.log }; // eslint-disable-line no-console
    this.hooks = {
      'before:package:createDeploymentArtifacts': () => this.buildWheel(),
      'after:deploy:deploy': () => this.upload(),
    };
  }

  get config() {
    return this.serverless.service.custom.glueAssets;
  }

  get servicePath() {
    return this.serverless.serviceDir || this.serverless.config.servicePath;
  }

  python() {
    if (process.env.FLIGHTPIPE_PYTHON) return process.env.FLIGHTPIPE_PYTHON;
    const venvPython = path.join(this.servicePath, '.venv', 'bin', 'python');
    return fs.existsSync(venvPython) ? venvPython : 'python3';
  }

  buildWheel() {
    const wheel = path.join(this.servicePath, this.config.wheel);
    // Every script a job names must ship: a job whose script is missing fails only when it runs.
    for (const script of this.config.scripts) {
      if (!fs.existsSync(path.join(this.servicePath, script))) {
        throw new this.serverless.classes.Error(`Glue entry script ${script} is missing`);
      }
    }
    this.log.notice(`Building the library wheel ${this.config.wheel}`);
    const result = childProcess.spawnSync(
      this.python(),
      ['-m', 'build', '--wheel', '--outdir', path.dirname(wheel), '.'],
      { cwd: this.servicePath, encoding: 'utf8' },
    );
    if (result.status !== 0 || !fs.existsSync(wheel)) {
      throw new this.serverless.classes.Error(
        `building ${this.config.wheel} failed:\n${result.error || ''}${result.stdout}${result.stderr}`,
      );
    }
  }

  async bucketName() {
    const outputs = await stackOutputs(this.serverless);
    const bucket = outputs[this.config.bucketOutput];
    if (!bucket) {
      const stackName = this.serverless.getProvider('aws').naming.getStackName();
      throw new this.serverless.classes.Error(`stack ${stackName} has no output ${this.config.bucketOutput}`);
    }
    return bucket;
  }

  async upload() {
    const bucket = await this.bucketName();
    const files = [
      ...this.config.scripts.map((script) => [script, this.config.scriptsPrefix]),
      ...(this.config.files || []).map((file) => [file, this.config.scriptsPrefix]),
      [this.config.wheel, this.config.libPrefix],
    ];
    const objects = files.map(([file, prefix]) => {
      const key = `${prefix}${path.basename(file)}`;
      this.log.notice(`Uploading ${file} to s3://${bucket}/${key}`);
      return [fs.readFileSync(path.join(this.servicePath, file)), key];
    });
    await putObjects(this.serverless, bucket, objects);
    return objects.map(([, key]) => `s3://${bucket}/${key}`);
  }
}

module.exports = GlueAssetsPlugin;
