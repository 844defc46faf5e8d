"""Deploy a packaged CloudFormation template into the local emulator.

moto's own CloudFormation does not know Glue, Secrets Manager or Redshift
Serverless resources, so this module is a small CloudFormation of its own for
the resource types the stack uses: it evaluates parameters (defaults),
conditions and the intrinsic functions (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``,
``Fn::Join``, ``Fn::If``, ``Fn::Select``, ``Fn::Split``, ...), creates the
resources in dependency order through the emulator's AWS APIs, and records each
resource's physical id and attributes. Resources with no behaviour to emulate
(policies, permissions, the Redshift workgroup itself) are recorded only, so
references to them still resolve.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ACCOUNT_ID = "123456789012"
_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")

ClientFactory = Callable[[str], Any]


class DeploymentError(RuntimeError):
    """The template uses something the local deployment cannot resolve or create."""


@dataclass
class Resource:
    """A deployed resource: its type, physical id (``Ref``) and ``GetAtt`` attributes."""

    logical_id: str
    type: str
    ref: str
    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Deployment:
    """What the template created, by logical id, with typed look-ups."""

    stack_name: str
    region: str
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    def one(self, resource_type: str, hint: str = "") -> Resource:
        """The resource of ``resource_type`` (the one whose logical id contains ``hint``)."""
        found = self.of_type(resource_type)
        if hint:
            found = [r for r in found if hint.lower() in r.logical_id.lower()] or found
        if not found:
            raise DeploymentError(f"the template has no {resource_type}")
        return found[0]

    @property
    def workgroups(self) -> list[str]:
        return [r.ref for r in self.of_type("AWS::RedshiftServerless::Workgroup")]

    @property
    def clusters(self) -> list[str]:
        return [r.ref for r in self.of_type("AWS::Redshift::Cluster")]


def _physical_name(stack: str, logical_id: str, max_length: int = 64, lower: bool = False) -> str:
    digest = hashlib.sha1(f"{stack}/{logical_id}".encode()).hexdigest()[:8].upper()
    name = f"{stack}-{logical_id}"[: max_length - 9] + f"-{digest}"
    return name.lower() if lower else name


class Resolver:
    """Evaluates CloudFormation intrinsic functions against deployed resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        deployment: Deployment,
        parameters: Mapping[str, str],
    ) -> None:
        self._template = template
        self._deployment = deployment
        self._parameters = self._parameter_values(parameters)
        self._conditions: dict[str, bool] = {}

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in (self._template.get("Parameters") or {}).items():
            if name in overrides:
                values[name] = overrides[name]
            elif "Default" in spec:
                values[name] = spec["Default"]
            else:
                raise DeploymentError(f"parameter {name} has no default; pass a value")
            is_list = spec.get("Type", "").startswith(("CommaDelimitedList", "List<"))
            if is_list and isinstance(values[name], str):
                values[name] = [v for v in values[name].split(",") if v]
        return values

    def pseudo(self, name: str) -> Any:
        deployment = self._deployment
        pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": deployment.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": deployment.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{deployment.region}:{ACCOUNT_ID}:stack/"
            f"{deployment.stack_name}/00000000-0000-0000-0000-000000000000",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }
        if name not in pseudo:
            raise DeploymentError(f"unknown pseudo parameter {name}")
        return pseudo[name]

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self._template.get("Conditions") or {}).get(name)
            if spec is None:
                raise DeploymentError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(spec))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self._parameters:
            return self._parameters[name]
        if name in self._deployment.resources:
            return self._deployment.resources[name].ref
        raise DeploymentError(
            f"Ref to {name}, which is neither a parameter nor a deployed resource"
        )

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self._deployment.resources.get(logical_id)
        if resource is None:
            raise DeploymentError(f"GetAtt {logical_id}.{attribute}: no such deployed resource")
        if attribute not in resource.attributes:
            raise DeploymentError(
                f"GetAtt {logical_id}.{attribute}: {resource.type} attributes known locally are "
                f"{sorted(resource.attributes)}"
            )
        return resource.attributes[attribute]

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated (``AWS::NoValue`` removed)."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = (
                argument.split(".", 1) if isinstance(argument, str) else argument
            )
            return self.get_att(logical_id, self.resolve(attribute))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(str(item) for item in self.resolve(items))
        if name == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false)
        if name == "Fn::Equals":
            left, right = self.resolve(argument)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(argument)[0]
        if name == "Fn::And":
            return all(self.resolve(argument))
        if name == "Fn::Or":
            return any(self.resolve(argument))
        if name == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Fn::Split":
            delimiter, text = argument
            return str(self.resolve(text)).split(delimiter)
        if name == "Fn::GetAZs":
            region = self.resolve(argument) or self._deployment.region
            return [f"{region}{zone}" for zone in "abc"]
        if name == "Fn::Base64":
            import base64

            return base64.b64encode(str(self.resolve(argument)).encode()).decode()
        if name == "Fn::FindInMap":
            mapping, top, second = (self.resolve(part) for part in argument)
            return self._template["Mappings"][mapping][top][second]
        if name == "Fn::ToJsonString":
            return json.dumps(self.resolve(argument))
        raise DeploymentError(f"intrinsic function {name} is not supported locally")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text)


def references(value: Any) -> set[str]:
    """Logical ids and parameter names that ``value`` refers to."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".", 1)[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                for name in _SUB_VARIABLE.findall(text):
                    found.add(name.split(".", 1)[0])
                if isinstance(item, list):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found


def creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids in an order where every resource comes after those it refers to."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise DeploymentError(f"circular reference through {logical_id}")
        visiting.add(logical_id)
        spec = resources[logical_id]
        depends = spec.get("DependsOn") or []
        depends = [depends] if isinstance(depends, str) else depends
        for other in sorted(references(spec.get("Properties") or {}) | set(depends)):
            if other in resources:
                visit(other)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return order


def generate_secret(spec: Mapping[str, Any]) -> str:
    """A secret string as ``GenerateSecretString`` describes it."""
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#%&*+-.:=?^_~"
    excluded = spec.get("ExcludeCharacters", "")
    alphabet = "".join(c for c in alphabet if c not in excluded)
    password = "".join(secrets.choice(alphabet) for _ in range(length))
    template = spec.get("SecretStringTemplate")
    if template and spec.get("GenerateStringKey"):
        document = json.loads(template)
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


class Deployer:
    """Creates a template's resources in the emulator through its AWS APIs."""

    def __init__(
        self,
        template: Mapping[str, Any],
        clients: ClientFactory,
        stack_name: str,
        region: str,
        parameters: Optional[Mapping[str, str]] = None,
        artifacts_dir: Optional[Path] = None,
    ) -> None:
        self._template = template
        self._artifacts_dir = artifacts_dir
        self._clients = clients
        self.deployment = Deployment(stack_name, region)
        self._resolver = Resolver(template, self.deployment, parameters or {})
        self._creators: dict[str, Callable[[str, dict[str, Any]], Resource]] = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::Events::Rule": self._rule,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Lambda::Function": self._function,
            "AWS::SNS::Topic": self._topic,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::Glue::Database": self._glue_database,
            "AWS::Glue::Crawler": self._crawler,
            "AWS::Glue::Job": self._job,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::IAM::Role": self._role,
            "AWS::IAM::ManagedPolicy": self._managed_policy,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::RedshiftServerless::Namespace": self._namespace,
            "AWS::RedshiftServerless::Workgroup": self._workgroup,
            "AWS::Redshift::Cluster": self._cluster,
            "AWS::KMS::Key": self._kms_key,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
        }

    def deploy(self) -> Deployment:
        resources = self._template.get("Resources") or {}
        for logical_id in creation_order(resources):
            spec = resources[logical_id]
            if spec.get("Condition") and not self._resolver.condition(spec["Condition"]):
                continue
            properties = self._resolver.resolve(spec.get("Properties") or {})
            creator = self._creators.get(spec["Type"], self._recorded)
            try:
                resource = creator(logical_id, properties)
            except DeploymentError:
                raise
            except Exception as error:
                raise DeploymentError(f"creating {logical_id} ({spec['Type']}): {error}") from error
            resource.type = spec["Type"]
            resource.properties = properties
            self.deployment.resources[logical_id] = resource
        for name, output in (self._template.get("Outputs") or {}).items():
            if output.get("Condition") and not self._resolver.condition(output["Condition"]):
                continue
            self.deployment.outputs[name] = self._resolver.resolve(output.get("Value"))
        return self.deployment

    def _arn(self, service: str, resource: str, region: Optional[str] = None) -> str:
        region = self.deployment.region if region is None else region
        return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"

    def _name(self, logical_id: str, max_length: int = 64, lower: bool = False) -> str:
        return _physical_name(self.deployment.stack_name, logical_id, max_length, lower)

    def _recorded(self, logical_id: str, properties: dict[str, Any]) -> Resource:
        name = self._name(logical_id)
        return Resource(logical_id, "", name, {"Arn": self._arn("local", name)})

    def _bucket(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("BucketName") or self._name(logical_id, 63, lower=True)
        s3 = self._clients("s3")
        s3.create_bucket(Bucket=name)
        if (p.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        configuration = bucket_notification(p.get("NotificationConfiguration") or {})
        if configuration:
            # S3 (moto too) sends a test event to each queue configured here.
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration=configuration
            )
        attributes = {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.deployment.region}.amazonaws.com",
        }
        return Resource(logical_id, "", name, attributes)

    def _rule(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("Name") or self._name(logical_id)
        events = self._clients("events")
        bus = p.get("EventBusName") or "default"
        pattern = p.get("EventPattern")
        rule: dict[str, Any] = {
            "Name": name,
            "State": p.get("State", "ENABLED"),
            "EventBusName": bus,
        }
        if pattern is not None:
            rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if p.get("ScheduleExpression"):
            rule["ScheduleExpression"] = p["ScheduleExpression"]
        events.put_rule(**rule)
        targets = [
            {key: value for key, value in target.items() if key in _TARGET_KEYS}
            for target in p.get("Targets") or []
        ]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return Resource(logical_id, "", name, {"Arn": self._arn("events", f"rule/{name}")})

    def _state_machine(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("StateMachineName") or self._name(logical_id, 80)
        definition = p.get("DefinitionString")
        if definition is None:
            definition = json.dumps(p.get("Definition") or {})
        for key, value in (p.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        json.loads(definition)  # fail here, not at the first execution
        arn = self._clients("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=p.get("RoleArn") or self._arn("iam", "role/local-states", ""),
            type=p.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        return Resource(logical_id, "", arn, {"Arn": arn, "Name": name})

    def _function(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("FunctionName") or self._name(logical_id)
        spec: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": p.get("Runtime", "python3.12"),
            "Role": p.get("Role") or self._arn("iam", "role/local-lambda", ""),
            "Handler": p["Handler"],
            "Code": {"ZipFile": self._function_zip(logical_id, p.get("Code") or {})},
            "Timeout": int(p.get("Timeout", 6)),
            "MemorySize": int(p.get("MemorySize", 1024)),
        }
        if p.get("LoggingConfig"):
            spec["LoggingConfig"] = dict(p["LoggingConfig"])
        variables = (p.get("Environment") or {}).get("Variables") or {}
        if variables:
            spec["Environment"] = {"Variables": {k: str(v) for k, v in variables.items()}}
        arn = self._clients("lambda").create_function(**spec)["FunctionArn"]
        return Resource(logical_id, "", name, {"Arn": arn})

    def _function_zip(self, logical_id: str, code: Mapping[str, Any]) -> bytes:
        """The function's deployment package: the zip ``sls package`` wrote beside the template."""
        if "ZipFile" in code:
            return str(code["ZipFile"]).encode()
        key = str(code.get("S3Key") or "")
        if self._artifacts_dir is None or not key:
            raise DeploymentError(f"{logical_id}: no deployment package (Code.S3Key) to deploy")
        path = self._artifacts_dir / key.rsplit("/", 1)[-1]
        if not path.is_file():
            raise DeploymentError(f"{logical_id}: {path} missing; package the stack again")
        return path.read_bytes()

    def _topic(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("TopicName") or self._name(logical_id, 256)
        arn = self._clients("sns").create_topic(Name=name)["TopicArn"]
        return Resource(logical_id, "", arn, {"TopicArn": arn, "TopicName": name})

    def _queue(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("QueueName") or self._name(logical_id, 80)
        attributes = {}
        for key, value in p.items():
            if key not in _QUEUE_ATTRIBUTES:
                continue
            if isinstance(value, bool):
                attributes[key] = "true" if value else "false"
            elif isinstance(value, dict):
                attributes[key] = json.dumps(value)
            else:
                attributes[key] = str(value)
        url = self._clients("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self._arn("sqs", name)
        return Resource(logical_id, "", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _queue_policy(self, logical_id: str, p: dict[str, Any]) -> Resource:
        document = p["PolicyDocument"]
        policy = document if isinstance(document, str) else json.dumps(document)
        sqs = self._clients("sqs")
        for url in p.get("Queues") or []:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        return Resource(logical_id, "", self._name(logical_id), {"Id": self._name(logical_id)})

    def _glue_database(self, logical_id: str, p: dict[str, Any]) -> Resource:
        database = dict(p["DatabaseInput"])
        self._clients("glue").create_database(DatabaseInput=database)
        return Resource(logical_id, "", database["Name"], {})

    def _crawler(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("Name") or self._name(logical_id)
        spec = {key: p[key] for key in _CRAWLER_KEYS if key in p}
        if isinstance(spec.get("Schedule"), dict):
            spec["Schedule"] = spec["Schedule"].get("ScheduleExpression", "")
        self._clients("glue").create_crawler(Name=name, **spec)
        return Resource(logical_id, "", name, {})

    def _job(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("Name") or self._name(logical_id)
        spec = {key: p[key] for key in _JOB_KEYS if key in p}
        if "DefaultArguments" in spec:
            spec["DefaultArguments"] = {k: str(v) for k, v in spec["DefaultArguments"].items()}
        # Numbers from stage parameters given on the command line arrive as strings.
        for key in ("MaxRetries", "Timeout", "NumberOfWorkers"):
            if key in spec:
                spec[key] = int(spec[key])
        if "MaxCapacity" in spec:
            spec["MaxCapacity"] = float(spec["MaxCapacity"])
        if "ExecutionProperty" in spec:
            spec["ExecutionProperty"] = {k: int(v) for k, v in spec["ExecutionProperty"].items()}
        self._clients("glue").create_job(Name=name, **spec)
        return Resource(logical_id, "", name, {})

    def _secret(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("Name") or self._name(logical_id)
        value = p.get("SecretString") or generate_secret(p.get("GenerateSecretString") or {})
        arn = self._clients("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        return Resource(logical_id, "", arn, {"Id": arn})

    def _role(self, logical_id: str, p: dict[str, Any]) -> Resource:
        """The role with its tags, inline policies and managed policies: the local stack's IAM
        decides every call of the role's sessions from them."""
        name = p.get("RoleName") or self._name(logical_id)
        iam = self._clients("iam")
        role = iam.create_role(
            RoleName=name,
            Path=p.get("Path", "/"),
            AssumeRolePolicyDocument=_policy_json(p.get("AssumeRolePolicyDocument") or {}),
            Tags=[{"Key": t["Key"], "Value": str(t["Value"])} for t in p.get("Tags") or []],
        )["Role"]
        for policy in p.get("Policies") or []:
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=_policy_json(policy["PolicyDocument"]),
            )
        for arn in p.get("ManagedPolicyArns") or []:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return Resource(logical_id, "", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _managed_policy(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("ManagedPolicyName") or self._name(logical_id, 128)
        iam = self._clients("iam")
        arn = iam.create_policy(
            PolicyName=name,
            Path=p.get("Path", "/"),
            PolicyDocument=_policy_json(p["PolicyDocument"]),
        )["Policy"]["Arn"]
        for role in p.get("Roles") or []:
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        return Resource(logical_id, "", arn, {"PolicyArn": arn})

    def _bucket_policy(self, logical_id: str, p: dict[str, Any]) -> Resource:
        self._clients("s3").put_bucket_policy(
            Bucket=p["Bucket"], Policy=_policy_json(p["PolicyDocument"])
        )
        return Resource(logical_id, "", self._name(logical_id), {})

    def _log_group(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("LogGroupName") or self._name(logical_id, 512)
        self._clients("logs").create_log_group(logGroupName=name)
        return Resource(logical_id, "", name, {"Arn": self._arn("logs", f"log-group:{name}:*")})

    def _kms_key(self, logical_id: str, p: dict[str, Any]) -> Resource:
        spec: dict[str, Any] = {
            "Description": str(p.get("Description") or logical_id),
            "KeyUsage": p.get("KeyUsage", "ENCRYPT_DECRYPT"),
        }
        if p.get("KeyPolicy"):
            spec["Policy"] = _policy_json(p["KeyPolicy"])
        key = self._clients("kms").create_key(**spec)["KeyMetadata"]
        return Resource(logical_id, "", key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})

    def _alarm(self, logical_id: str, p: dict[str, Any]) -> Resource:
        """A metric alarm as CloudFormation creates it (PutMetricAlarm's parameters are the
        resource's properties, numbers as numbers)."""
        name = p.get("AlarmName") or self._name(logical_id, 255)
        spec = {key: p[key] for key in _ALARM_KEYS if key in p}
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in spec:
                spec[key] = int(spec[key])
        if "Threshold" in spec:
            spec["Threshold"] = float(spec["Threshold"])
        if "ActionsEnabled" in spec:
            spec["ActionsEnabled"] = spec["ActionsEnabled"] in (True, "true")
        self._clients("cloudwatch").put_metric_alarm(AlarmName=name, **spec)
        return Resource(logical_id, "", name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")})

    def _dashboard(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("DashboardName") or self._name(logical_id, 255)
        body = p["DashboardBody"]
        body = body if isinstance(body, str) else json.dumps(body)
        json.loads(body)  # CloudWatch refuses a body that is not JSON; fail here as it would
        self._clients("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=body)
        return Resource(logical_id, "", name, {})

    def _namespace(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("NamespaceName") or self._name(logical_id, 64, lower=True)
        arn = self._arn("redshift-serverless", f"namespace/{name}")
        attributes = {
            "Namespace.NamespaceName": name,
            "Namespace.NamespaceArn": arn,
            "Namespace.NamespaceId": name,
            "Namespace.AdminPasswordSecretArn": self._arn("secretsmanager", f"secret:{name}-admin"),
        }
        return Resource(logical_id, "", name, attributes)

    def _workgroup(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("WorkgroupName") or self._name(logical_id, 64, lower=True)
        arn = self._arn("redshift-serverless", f"workgroup/{name}")
        attributes = {
            "Workgroup.WorkgroupName": name,
            "Workgroup.WorkgroupArn": arn,
            "Workgroup.WorkgroupId": name,
            "Workgroup.Endpoint.Address": "127.0.0.1",
            "Workgroup.Endpoint.Port": 5439,
        }
        return Resource(logical_id, "", name, attributes)

    def _cluster(self, logical_id: str, p: dict[str, Any]) -> Resource:
        name = p.get("ClusterIdentifier") or self._name(logical_id, 63, lower=True)
        attributes = {"Endpoint.Address": "127.0.0.1", "Endpoint.Port": "5439"}
        return Resource(logical_id, "", name, attributes)


def _policy_json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def bucket_notification(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``PutBucketNotificationConfiguration``'s argument for a template's
    ``NotificationConfiguration``: EventBridge and queue configurations (one event each in
    CloudFormation, a list in the API; ``S3Key.Rules`` become ``Key.FilterRules``)."""
    configuration: dict[str, Any] = {}
    if (spec.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (True, "true"):
        configuration["EventBridgeConfiguration"] = {}
    queues = []
    for queue in spec.get("QueueConfigurations") or []:
        entry: dict[str, Any] = {"QueueArn": queue["Queue"], "Events": [queue["Event"]]}
        rules = ((queue.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        if rules:
            entry["Filter"] = {
                "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
            }
        queues.append(entry)
    if queues:
        configuration["QueueConfigurations"] = queues
    return configuration


# AWS::SQS::Queue properties that are queue attributes of the same name.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
)
# AWS::CloudWatch::Alarm properties that are PutMetricAlarm parameters of the same name.
_ALARM_KEYS = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


_TARGET_KEYS = ("Id", "Arn", "RoleArn", "Input", "InputPath", "InputTransformer", "SqsParameters")
_CRAWLER_KEYS = (
    "Role",
    "DatabaseName",
    "Description",
    "Targets",
    "Schedule",
    "Classifiers",
    "TablePrefix",
    "SchemaChangePolicy",
    "RecrawlPolicy",
    "Configuration",
    "CrawlerSecurityConfiguration",
)
_JOB_KEYS = (
    "Role",
    "Description",
    "Command",
    "DefaultArguments",
    "NonOverridableArguments",
    "ExecutionProperty",
    "MaxRetries",
    "Timeout",
    "MaxCapacity",
    "GlueVersion",
    "WorkerType",
    "NumberOfWorkers",
)


def upload_glue_assets(
    s3: Any, repo: Path, glue_assets: Mapping[str, Any], deployment: Deployment
) -> list[str]:
    """Upload the jobs' scripts and the wheel as ``sls deploy`` does after a deploy.

    The local plugin ``.serverless_plugins/glue-assets.js`` does this on AWS, configured by
    ``custom.glueAssets`` in serverless.yml: every entry script of ``scripts`` goes to
    ``s3://<bucket output>/<scriptsPrefix>`` with the other ``files`` the jobs read, the wheel
    to ``<libPrefix>``.
    Returns the URIs written.
    """
    if not glue_assets:
        raise DeploymentError("serverless.yml has no custom.glueAssets: nothing to upload")
    bucket = deployment.outputs.get(glue_assets["bucketOutput"])
    if not bucket:
        raise DeploymentError(f"the stack has no output {glue_assets['bucketOutput']}")
    beside_scripts = [*glue_assets["scripts"], *(glue_assets.get("files") or [])]
    files = [(name, glue_assets["scriptsPrefix"]) for name in beside_scripts]
    files.append((glue_assets["wheel"], glue_assets["libPrefix"]))
    uploaded = []
    for name, prefix in files:
        path = repo / name
        if not path.is_file():
            raise DeploymentError(f"{path} missing: package the stack again (it builds the wheel)")
        key = prefix + path.name
        s3.upload_file(str(path), bucket, key)
        uploaded.append(f"s3://{bucket}/{key}")
    return uploaded
