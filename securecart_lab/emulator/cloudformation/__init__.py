"""CloudFormation that behaves like CloudFormation, on top of moto's: the one implementation that `deploy`, the AWS
CLI and boto3 all go through.

- template.py: parse every short form (cfn-lint's decoder), validate with cfn-lint before anything changes, AWS's
  wording with line and column.
- changes.py: change sets (Add/Modify/Remove, Replacement from AWS's resource provider schemas).
- updaters.py: in-place updates through the services' own APIs.
- state_machines.py: AWS::StepFunctions::StateMachine as CloudFormation creates it (Definition, substitutions,
  EXPRESS, logging).
- engine.py: apply an update (create, update in place, replace, clean up) and roll back on failure; delete a
  stack (DELETE_FAILED naming what could not go, continued by DeleteStack again).
- api.py: the API actions (CreateStack, UpdateStack, DeleteStack, ValidateTemplate, change sets, DescribeEvents).

Resource-level fixes (stack events per resource, rollback of a failed create, dotted Fn::Sub) are in
bridges/cloudformation.py, which installs this package.
"""

from __future__ import annotations

from securecart_lab.emulator import hooks


def install() -> None:
    from securecart_lab.emulator.cloudformation import api, state_machines

    state_machines.install()

    for action, handler in api.HANDLERS.items():
        if f"cfn.response.{action}" in hooks.HOOKS:
            hooks.replace(f"cfn.response.{action}", handler)
        else:
            setattr(hooks.resolve("cfn.response"), action, handler)
    # DescribeStacks' DriftInformation (moto serialises a stack's attributes by name).
    hooks.resolve("cfn.stack").drift_information = property(api.drift_information)
