"""The project's `sls deploy` plugins (.serverless_plugins/), run on the Node sls runs on against
a moto server standing in for the AWS account: each makes its AWS calls with SDK v3 clients
from the provider's ``getAwsSdkV3Config()``, the only AWS surface osls 4 leaves plugins."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGINS = REPO_ROOT / ".serverless_plugins"
REGION = "us-east-1"
STACK = "flightpipe-dev"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# A stand-in for the deployed stack: the outputs the plugins read.
STACK_TEMPLATE = {
    "Resources": {
        "Notices": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "flightpipe-dev-n"}},
        "DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "fp-dev-data"}},
    },
    "Outputs": {
        "NotificationsTopicArn": {"Value": {"Ref": "Notices"}},
        "DataBucketName": {"Value": {"Ref": "DataBucket"}},
    },
}

# The framework as a plugin sees it: its service and a provider whose getAwsSdkV3Config()
# points the clients at the moto server. The removed SDK v2 surface throws as in osls 4.
HARNESS = """
const [pluginPath, endpoint, serviceJson] = process.argv.slice(1);
const Plugin = require(pluginPath);
const removed = () => { throw new Error('AWS_SDK_V2_SURFACE_REMOVED'); };
const logged = [];
const serverless = {
  service: JSON.parse(serviceJson),
  serviceDir: process.cwd(),
  classes: {Error},
  getProvider: () => ({
    getStage: () => 'dev',
    getRegion: () => 'us-east-1',
    naming: {getStackName: () => 'flightpipe-dev'},
    getAwsSdkV3Config: async () => ({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'},
    }),
    request: removed,
    getCredentials: removed,
  }),
};
const plugin = new Plugin(serverless, {}, {log: {notice: (line) => logged.push(line)}});
plugin.hooks['after:deploy:deploy']()
  .then((result) => console.log(JSON.stringify({logged, result})))
  .catch((error) => { console.error(error.stack || String(error)); process.exit(1); });
"""


@pytest.fixture(scope="module")
def account() -> Iterator[str]:
    """A moto server with the stand-in stack deployed; yields its endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "cloudformation", region_name=REGION, endpoint_url=endpoint, **CREDENTIALS
    ).create_stack(StackName=STACK, TemplateBody=json.dumps(STACK_TEMPLATE))
    yield endpoint
    server.stop()


def after_deploy(plugin: str, endpoint: str, service: dict[str, Any]) -> dict[str, Any]:
    """Run the plugin's after:deploy:deploy hook; what it logged and returned."""
    result = subprocess.run(
        [
            "npx",
            "--no-install",
            "node",
            "-e",
            HARNESS,
            str(PLUGINS / plugin),
            endpoint,
            json.dumps(service),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def alert_email_service(address: str) -> dict[str, Any]:
    parameters = {"AlertEmail": {"Default": address}}
    return {"provider": {"compiledCloudFormationTemplate": {"Parameters": parameters}}}


def test_sls_deploy_without_alert_email_prints_one_line_naming_the_deployed_topic(
    account: str,
) -> None:
    done = after_deploy("alert-email.js", account, alert_email_service(""))
    topic = f"arn:aws:sns:{REGION}:123456789012:flightpipe-dev-n"
    assert done["logged"] == [
        "Notices and alarms of stage dev reach no one: alertEmail is empty. Subscribe with "
        'sls deploy --stage dev --param="alertEmail=you@example.com", or aws sns subscribe '
        f"--topic-arn {topic} --protocol email --notification-endpoint you@example.com"
    ]


def test_sls_deploy_with_alert_email_prints_nothing(account: str) -> None:
    done = after_deploy("alert-email.js", account, alert_email_service("team@example.com"))
    assert done["logged"] == []


def test_sls_deploy_uploads_the_glue_scripts_their_files_and_the_wheel_to_the_data_bucket(
    account: str, tmp_path: Path
) -> None:
    assets = {
        "scripts": ["glue_scripts/flight_etl.py", "glue_scripts/flight_etl_spark.py"],
        "files": ["glue_scripts/log4j2.properties"],
        "wheel": "pyproject.toml",  # any file of the checkout stands in for the built wheel
        "scriptsPrefix": "glue/scripts/",
        "libPrefix": "glue/lib/",
        "bucketOutput": "DataBucketName",
    }
    done = after_deploy("glue-assets.js", account, {"custom": {"glueAssets": assets}})
    expected = [
        "glue/scripts/flight_etl.py",
        "glue/scripts/flight_etl_spark.py",
        "glue/scripts/log4j2.properties",
        "glue/lib/pyproject.toml",
    ]
    assert done["result"] == [f"s3://fp-dev-data/{key}" for key in expected]
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=account, **CREDENTIALS)
    for key, name in zip(expected, [*assets["scripts"], *assets["files"], assets["wheel"]]):
        body = s3.get_object(Bucket="fp-dev-data", Key=key)["Body"].read()
        assert body == (REPO_ROOT / name).read_bytes(), key


def test_no_plugin_calls_the_sdk_v2_surface_osls_4_removed() -> None:
    for plugin in PLUGINS.glob("*.js"):
        source = plugin.read_text(encoding="utf-8")
        assert not re.search(r"\.request\(|\.getCredentials\(|provider\.sdk\b", source), plugin


def test_the_deploy_plugins_are_registered_and_run_after_deploy() -> None:
    source = (REPO_ROOT / "serverless.yml").read_text(encoding="utf-8")
    plugins = source[source.index("\nplugins:") : source.index("\nprovider:")]
    for name in ("alert-email", "glue-assets"):
        assert re.search(rf"^  - {name}$", plugins, re.MULTILINE), name
        hooks = subprocess.run(
            [
                "npx",
                "--no-install",
                "node",
                "-e",
                f"const P = require('./.serverless_plugins/{name}.js');"
                "console.log(Object.keys(new P({service: {provider: {}}}, {}, {}).hooks).join());",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "after:deploy:deploy" in hooks.stdout.strip().split(","), (name, hooks.stderr)
