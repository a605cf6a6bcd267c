"""Templates as CloudFormation reads them (every short form), cfn-lint's findings in AWS's words, change sets
with AWS's Replacement values, and the deploy side: parameters files and problem lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from securecart_lab.emulator.cloudformation import changes, template
from securecart_lab.errors import LabError, WorkspaceFileError
from securecart_lab.labs import service, stacks

ROOT = Path(__file__).resolve().parents[2]
LAB2 = (ROOT / "labs/02-multi-tier/solution/template.yaml").read_text()

SHORT_FORMS = """
Parameters:
  Env: {Type: String, Default: dev}
Mappings:
  Sizes: {dev: {Class: db.t3.micro}}
Conditions:
  IsDev: !Equals [!Ref Env, dev]
  NotDev: !Not [!Condition IsDev]
  Either: !Or [!Condition IsDev, !Condition NotDev]
  Both: !And [!Condition IsDev, !Condition Either]
Resources:
  Replica:
    Type: AWS::RDS::DBInstance
    Properties:
      SourceDBInstanceIdentifier: source-db
      DBInstanceClass: !FindInMap [Sizes, !Ref Env, Class]
  Param:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Join [":", [!GetAtt Replica.Endpoint.Address, !GetAtt [Replica, Endpoint.Port]]]
      Description: !Sub "${Replica.Endpoint.Address} in ${AWS::Region} ${!Literal}"
      AllowedPattern: !Select [0, !Split [",", !Join [",", !GetAZs ""]]]
      Tier: !If [IsDev, Standard, !Ref "AWS::NoValue"]
      DataType: !Base64 text
      Name: !Select [1, !Cidr [10.0.0.0/16, 2, 8]]
Outputs:
  Imported:
    Value: !ImportValue other-stack-export
"""


def test_every_short_form_parses_to_the_long_form():
    document = template.parse(SHORT_FORMS)
    props = document["Resources"]["Param"]["Properties"]
    assert props["Value"] == {"Fn::Join": [":", [{"Fn::GetAtt": ["Replica", "Endpoint.Address"]},
                                                 {"Fn::GetAtt": ["Replica", "Endpoint.Port"]}]]}
    assert props["Description"] == {"Fn::Sub": "${Replica.Endpoint.Address} in ${AWS::Region} ${!Literal}"}
    assert props["AllowedPattern"] == {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::Join": [",", {"Fn::GetAZs": ""}]}]}]}
    assert props["Tier"] == {"Fn::If": ["IsDev", "Standard", {"Ref": "AWS::NoValue"}]}
    assert props["DataType"] == {"Fn::Base64": "text"}
    assert props["Name"] == {"Fn::Select": [1, {"Fn::Cidr": ["10.0.0.0/16", 2, 8]}]}
    assert document["Resources"]["Replica"]["Properties"]["DBInstanceClass"] == {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Class"]}
    assert document["Conditions"]["Both"] == {"Fn::And": [{"Condition": "IsDev"}, {"Condition": "Either"}]}
    assert document["Conditions"]["NotDev"] == {"Fn::Not": [{"Condition": "IsDev"}]}
    assert document["Outputs"]["Imported"]["Value"] == {"Fn::ImportValue": "other-stack-export"}
    assert template.references(props["Value"]) == {("Replica", "Endpoint.Address"), ("Replica", "Endpoint.Port")}
    assert template.references(props["Description"]) == {("Replica", "Endpoint.Address"), ("AWS::Region", None)}


@pytest.mark.parametrize("replacements, expected", [
    ({"!Ref DbSubnetGroup\n": "!Ref DbSubnetGroupp\n"},
     "Template format error: Unresolved resource dependencies [DbSubnetGroupp] in the Resources block of the template "
     "(line 146, column 7)"),
    ({"Value: !Sub \"http://${LoadBalancer.DNSName}\"": "Value: !Sub \"http://${LoadBalancr.DNSName}\""},
     "Template format error: Unresolved resource dependencies [LoadBalancr] in the Outputs block of the template"),
    # Was: "Unresolved resource dependencies [DNSNam]" (an attribute is not a resource).
    ({"Value: !Sub \"http://${LoadBalancer.DNSName}\"": "Value: !Sub \"http://${LoadBalancer.DNSNam}\""},
     "Template error: resource LoadBalancer does not support attribute type DNSNam in Fn::GetAtt"),
    ({"Type: AWS::EC2::InternetGateway\n": "Type: AWS::EC2::InternetGateways\n"},
     "Template format error: Unrecognized resource types: [AWS::EC2::InternetGateways] (line 27, column 5)"),
    ({'MinSize: "2"': "MinSize: [2]"},
     "Properties validation failed for resource AppGroup with message: #/MinSize: expected type: String, found: JSONArray"),
    ({"      EnableDnsSupport: true": "      EnableDnsSupport: true\n      EnableDNS: true"},
     "Properties validation failed for resource Vpc with message: #: extraneous key [EnableDNS] is not permitted "
     "(line 23, column 7)"),
    ({"!GetAtt AppLaunchTemplate.LatestVersionNumber": "!GetAtt AppLaunchTemplate.Newest"},
     "Template error: resource AppLaunchTemplate does not support attribute type Newest in Fn::GetAtt (line 196, column 9)"),
    ({"Resources:\n": "Resources:\n  Loop1:\n    Type: AWS::SSM::Parameter\n    Properties: {Type: String, Value: !GetAtt Loop2.Value}\n"
                      "  Loop2:\n    Type: AWS::SSM::Parameter\n    Properties: {Type: String, Value: !GetAtt Loop1.Value}\n"},
     "Template error: Circular dependency between resources: [Loop1, Loop2]"),
])
def test_errors_are_worded_as_aws_words_them_with_their_line(replacements, expected):
    text = LAB2
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new, 1)
    with pytest.raises(template.TemplateError) as error:
        template.check(text)
    assert expected in str(error.value), str(error.value)


def test_one_set_of_rules_lints_every_template_and_a_text_is_linted_once():
    # Loading cfn-lint's ~300 rules took longer than linting a lab's template with them, on every update.
    template.lint(LAB2)
    loaded = template._linter.cache_info().misses
    changed = LAB2.replace("HealthCheckIntervalSeconds: 10", "HealthCheckIntervalSeconds: 13")
    first = template.lint(changed)
    assert template._linter.cache_info().misses == loaded == 1
    linted = template._lint.cache_info().misses
    assert template.lint(changed) == first and template._lint.cache_info().misses == linted
    # The same rules still find what is wrong in the next template.
    broken = template.lint(changed.replace("!Ref DbSubnetGroup\n", "!Ref DbSubnetGroupp\n"))[1]
    assert [p.message for p in broken if p.severity == "error"] == [
        "Template format error: Unresolved resource dependencies [DbSubnetGroupp] in the Resources block of the template"]


def test_warnings_stay_warnings():
    document, warnings = template.check(LAB2)
    assert document["Resources"]["Database"]["Type"] == "AWS::RDS::DBInstance"
    assert {w.rule for w in warnings} >= {"W1011"}
    assert all(w.severity == "warning" and w.line for w in warnings)


def test_malformed_yaml_names_line_and_column():
    with pytest.raises(template.TemplateError) as error:
        template.check("Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n   Properties: [\n")
    assert str(error.value).startswith("Template format error: YAML not well-formed.")
    assert error.value.problems[0].line == 4


def _diff(replacements: dict[str, str]) -> dict[str, changes.ResourceChange]:
    text = LAB2
    for old, new in replacements.items():
        text = text.replace(old, new)
    old_doc, new_doc = template.parse(LAB2), template.parse(text)
    return {c.logical_id: c for c in changes.diff(old_doc, new_doc, {"DBPassword": "x"}, {"DBPassword": "x"})}


def test_change_sets_say_replacement_from_the_provider_schemas():
    found = _diff({"DBName: storefront": "DBName: shop", "HealthCheckIntervalSeconds: 10": "HealthCheckIntervalSeconds: 20"})
    # The user data reads the replaced database's endpoint: the launch template gets a new version, the group uses it.
    assert {k: c.replacement for k, c in found.items()} == {
        "Database": "True", "AppLaunchTemplate": "False", "AppGroup": "False", "AppTargetGroup": "False"}
    assert found["Database"].details == [{"Target": {"Attribute": "Properties", "Name": "DBName", "RequiresRecreation": "Always"},
                                          "Evaluation": "Static", "ChangeSource": "DirectModification"}]
    assert found["AppTargetGroup"].replacement == "False"


def test_a_replacement_makes_its_dependents_dynamic_changes():
    found = _diff({"CidrBlock: 10.20.11.0/24": "CidrBlock: 10.20.12.0/24"})
    assert {k: c.replacement for k, c in found.items()} == {
        "PrivateSubnetB": "True", "PrivateSubnetBRoutes": "Conditional", "DbSubnetGroup": "False", "AppGroup": "False"}
    assert found["DbSubnetGroup"].details[0]["ChangeSource"] == "ResourceReference"
    assert found["DbSubnetGroup"].details[0]["CausingEntity"] == "PrivateSubnetB"
    assert found["DbSubnetGroup"].details[0]["Evaluation"] == "Dynamic"


def test_a_parameter_change_is_a_modification_of_what_uses_it():
    doc = template.parse(LAB2)
    found = {c.logical_id: c for c in changes.diff(doc, doc, {"DBPassword": "a"}, {"DBPassword": "b"})}
    assert set(found) == {"Database", "AppLaunchTemplate", "AppGroup"}
    assert found["Database"].details[0]["ChangeSource"] == "ParameterReference"


def test_parameters_json_in_the_aws_cli_format(tmp_path):
    (tmp_path / "parameters.json").write_text(json.dumps([{"ParameterKey": "DBPassword", "ParameterValue": "s3cret"},
                                                           {"ParameterKey": "Port", "ParameterValue": 5432}]))
    assert stacks.read_parameters(tmp_path) == {"DBPassword": "s3cret", "Port": "5432"}
    assert stacks.read_parameters(tmp_path, {"DBPassword": "other"})["DBPassword"] == "other"
    assert stacks.read_parameters(tmp_path / "missing") == {}
    (tmp_path / "parameters.json").write_text('[{"ParameterKey": "A"}]')
    with pytest.raises(WorkspaceFileError, match="ParameterKey and ParameterValue"):
        stacks.read_parameters(tmp_path)
    (tmp_path / "parameters.json").write_text('{"DBPassword": "x",}')
    with pytest.raises(WorkspaceFileError, match="parameters.json:1: invalid JSON"):
        stacks.read_parameters(tmp_path)


def test_parameter_options_are_key_value():
    assert service.parse_parameters(["DBPassword=a=b", "Env=dev"]) == {"DBPassword": "a=b", "Env": "dev"}
    with pytest.raises(LabError, match="expected KEY=VALUE"):
        service.parse_parameters(["DBPassword"])


def test_problems_become_file_line_column_lines():
    message = ("Template format error: Unresolved resource dependencies [X] in the Resources block of the template "
               "(line 146, column 7)\nTemplate error: something without a line")
    assert stacks._problems(Path("/w/template.yaml"), message) == [
        "template.yaml:146:7: Template format error: Unresolved resource dependencies [X] in the Resources block of the template",
        "Template error: something without a line"]
    assert stacks.declared_at(LAB2, "Database") == 134
