"""Which AWS account a request acts in, from the credentials it was signed with; refusing those the kit never issued.

The kit has two accounts (config.ACCOUNTS): SecureCart's (123456789012) and lab 4's security account
(222222222222). As with LocalStack, the access key id selects the account:
- a 12-digit key id names its account: `AWS_ACCESS_KEY_ID=222222222222` acts as the security account's admin,
  `123456789012` as SecureCart's. A 12-digit id of an account the kit does not have is refused
  (`InvalidClientTokenId`), rather than quietly acting in SecureCart's account;
- temporary credentials (key ids starting ASIA) act in the account of the role they were issued for, and only the
  emulator's STS issues them (`sts assume-role`, and the role sessions the kit gives Step Functions, EventBridge and
  Lambda): a temporary key it did not issue (made up, or from before the emulator restarted) is refused, where moto
  would treat it as SecureCart's admin;
- any other key id (the kit's `test`, a key made with `iam create-access-key`) acts as before: moto's own lookup,
  SecureCart's account by default.
moto selects the account from the `x-moto-account-id` header when there is one; this middleware sets it for a
12-digit key, and refuses one naming an account the kit does not have.

Signatures are not verified (as in LocalStack and moto): knowing an account's id is enough to act in it. The two
accounts separate resources, not people; the boundaries the labs teach are the ones AWS evaluates when one account's
service acts on another's resources (an event bus's resource policy, a rule's role), and those are enforced.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from securecart_lab import config
from securecart_lab.emulator import guard

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_SIGV2 = re.compile(r"^AWS ([^:\s]+):")
_ACCOUNT_KEY = re.compile(r"^\d{12}$")
_HEADER = "HTTP_X_MOTO_ACCOUNT_ID"
_SCOPE = re.compile(r"Credential=[^/,\s]+/[^/,\s]+/[^/,\s]+/[^/,\s]+/aws4_request")
_INCOMPLETE = ("IncompleteSignatureException", "IncompleteSignature", "AuthorizationHeaderMalformed")
_INVALID = ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId")


def access_key(environ: dict[str, Any]) -> str | None:
    """The access key id a request was signed with (SigV4 or SigV2 header, or a presigned query), or None."""
    authorization = environ.get("HTTP_AUTHORIZATION") or ""
    match = _CREDENTIAL.search(authorization) or _SIGV2.match(authorization)
    if match:
        return match.group(1)
    query = environ.get("QUERY_STRING") or ""
    if "Credential" in query or "AWSAccessKeyId" in query:
        values = parse_qs(query)
        credential = (values.get("X-Amz-Credential") or [""])[0]
        if credential:
            return credential.split("/", 1)[0]
        return (values.get("AWSAccessKeyId") or [None])[0]
    return None


def _issued(key: str) -> bool:
    """Whether the emulator's STS issued this temporary key (moto keeps it in the role account's IAM backend)."""
    if "moto.iam.models" not in sys.modules:
        return False  # nothing has issued a key yet
    from moto.iam.models import iam_backends

    for _, backend in list(iam_backends.items()):
        for partition in list(backend.values()):
            if key in partition.access_keys:
                return True
    return False


def account_of(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the account the request's credentials select, or None for moto's own lookup; why they are refused, or None)."""
    kit_accounts = set(config.ACCOUNTS.values())
    named = environ.get(_HEADER)
    if named is not None and named not in kit_accounts:
        return None, (f"Account {named} is not one of the kit's accounts ({_known()}).")
    key = access_key(environ)
    if key is None:
        return None, None
    if _ACCOUNT_KEY.match(key):
        if key not in kit_accounts:
            return None, (f"The security token included in the request is invalid: access key {key} names account {key}, "
                          f"which the kit does not have ({_known()}).")
        return key, None
    if key.startswith("ASIA") and not _issued(key):
        return None, (f"The security token included in the request is invalid: temporary access key {key} was not "
                      "issued by this emulator's STS (an emulator restart ends every role session: assume the role again).")
    return None, None


def _known() -> str:
    return ", ".join(f"{name} {account}" for name, account in config.ACCOUNTS.items())


class Accounts:
    """WSGI middleware in front of moto's API: selects the account a 12-digit access key id names and refuses
    credentials the kit did not issue (see the module doc)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION") or ""
        if authorization.startswith("AWS4-HMAC-SHA256") and not _SCOPE.search(authorization):
            # moto reads the region and service from the scope by position: it failed with an IndexError (a 500)
            return guard.refuse(environ, start_response, status="400 Bad Request", codes=_INCOMPLETE, message=(
                "Authorization header requires 'Credential' parameter in the form "
                "Credential=ACCESS_KEY/DATE/REGION/SERVICE/aws4_request"))
        account, refusal = account_of(environ)
        if refusal is not None:
            return guard.refuse(environ, start_response, refusal, codes=_INVALID)
        if account is not None:
            environ[_HEADER] = account
        return self.app(environ, start_response)
