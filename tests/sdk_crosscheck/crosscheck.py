"""Cross-checks akguard's emulator against Alibaba's official Python SDKs.

V1: requests signed by `aliyun-python-sdk-core` (GET and POST) must be accepted; a tampered
signature and a reused nonce must be rejected with Alibaba's codes. V3: the same with
`alibabacloud_tea_openapi`, whose default signature is ACS3-HMAC-SHA256. This proves the
emulator verifies both signatures the way Alibaba's SDKs sign, independently of akguard's own
client.

Usage: python crosscheck.py AKGUARD_BINARY SCENARIO ACCESS_KEY_ID ACCESS_KEY_SECRET
"""

import json
import subprocess
import sys
import urllib.error
import urllib.request

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkcore.utils import parameter_helper
from alibabacloud_tea_openapi import exceptions as v3_exceptions
from alibabacloud_tea_openapi import utils_models as v3_models
from alibabacloud_tea_openapi.client import Client as V3Client
from alibabacloud_tea_openapi.utils import Utils as V3Utils
from darabonba.runtime import RuntimeOptions

RESULTS = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    if condition:
        RESULTS["passed"] += 1
        print(f"ok   {name}")
    else:
        RESULTS["failed"] += 1
        print(f"FAIL {name} {detail}")


def start_emulator(binary, scenario):
    proc = subprocess.Popen(
        [binary, "emulator", "--listen", "127.0.0.1:0", "--scenario", scenario],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    ready = json.loads(line)
    assert ready["emulator"] == "ready", line
    return proc, ready["listen"]


def request(addr, version, action, method, query=None, body=None):
    req = CommonRequest()
    req.set_domain(addr)
    req.set_protocol_type("http")
    req.set_version(version)
    req.set_action_name(action)
    req.set_method(method)
    req.set_accept_format("json")
    for key, value in (query or {}).items():
        req.add_query_param(key, value)
    for key, value in (body or {}).items():
        req.add_body_params(key, value)
    return req


def server_error(client, req):
    try:
        client.do_action_with_exception(req)
    except ServerException as err:
        return err.get_error_code()
    return None


def v3_call(client, version, action, query=None, body=None):
    """One RPC call through the V3 SDK's generic `call_api`, as the product SDKs make it."""
    params = v3_models.Params(
        action=action,
        version=version,
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    request = v3_models.OpenApiRequest(query=query or {}, body=body)
    return client.call_api(params, request, RuntimeOptions(autoretry=False))["body"]


def v3_error(client, version, action):
    try:
        v3_call(client, version, action)
    except v3_exceptions.AlibabaCloudException as err:
        return err.code
    return None


def v3_checks(addr, key_id, secret):
    def client(key, sec):
        return V3Client(v3_models.Config(access_key_id=key, access_key_secret=sec, endpoint=addr, protocol="http"))

    sdk = client(key_id, secret)
    body = v3_call(sdk, "2015-05-01", "ListUsers")
    check("V3: ListUsers signed by the V3 SDK is accepted", "Users" in body, body)
    name = body["Users"]["User"][0]["UserName"]

    body = v3_call(sdk, "2015-05-01", "GetUser", query={"UserName": name, "Comments": "a b*c~d+é"})
    check("V3: query values needing every encoding rule are accepted", body.get("User", {}).get("UserName") == name, body)

    body = v3_call(sdk, "2015-05-01", "ListAccessKeys", body={"UserName": name})
    check("V3: a form body (hashed into the signature) is accepted", "AccessKeys" in body, body)

    # Tampered: the SDK's own Authorization with one hex digit of the signature changed.
    original = V3Utils.get_authorization

    def tampered(*args):
        auth = original(*args)
        head, signature = auth.rsplit("Signature=", 1)
        return head + "Signature=" + ("1" if signature[0] == "0" else "0") + signature[1:]

    V3Utils.get_authorization = staticmethod(tampered)
    try:
        code = v3_error(sdk, "2015-05-01", "ListUsers")
    finally:
        V3Utils.get_authorization = staticmethod(original)
    check("V3: a tampered signature is SignatureDoesNotMatch", code == "SignatureDoesNotMatch", code)

    # Reused nonce: the SDK's nonce source pinned to one value for two calls.
    original_nonce = V3Utils.get_nonce
    V3Utils.get_nonce = staticmethod(lambda: "akguard-crosscheck-fixed-v3-nonce")
    try:
        first = v3_error(sdk, "2015-05-01", "ListUsers")
        second = v3_error(sdk, "2015-05-01", "ListUsers")
    finally:
        V3Utils.get_nonce = staticmethod(original_nonce)
    check("V3: the first use of a nonce is accepted", first is None, first)
    check("V3: a reused nonce is SignatureNonceUsed", second == "SignatureNonceUsed", second)

    code = v3_error(client(key_id, secret + "x"), "2015-05-01", "ListUsers")
    check("V3: a wrong secret is SignatureDoesNotMatch", code == "SignatureDoesNotMatch", code)

    code = v3_error(client("LTAI5tUNKNOWNKEY000000", secret), "2015-05-01", "ListUsers")
    check("V3: an unknown key is InvalidAccessKeyId.NotFound", code == "InvalidAccessKeyId.NotFound", code)


def main():
    binary, scenario, key_id, secret = sys.argv[1:5]
    proc, addr = start_emulator(binary, scenario)
    try:
        client = AcsClient(key_id, secret, "cn-hangzhou", auto_retry=False)

        body = json.loads(client.do_action_with_exception(request(addr, "2015-05-01", "ListUsers", "GET")))
        check("GET ListUsers signed by the SDK is accepted", "Users" in body, body)

        body = json.loads(client.do_action_with_exception(request(addr, "2015-05-01", "ListUsers", "POST")))
        check("POST ListUsers signed by the SDK is accepted", "Users" in body, body)

        users = body["Users"]["User"]
        name = users[0]["UserName"]
        body = json.loads(
            client.do_action_with_exception(
                request(addr, "2015-05-01", "ListAccessKeys", "POST", body={"UserName": name})
            )
        )
        check("POST with form-body parameters is accepted", "AccessKeys" in body, body)

        body = json.loads(
            client.do_action_with_exception(
                request(addr, "2015-05-01", "GetUser", "GET", query={"UserName": name, "Comments": "a b*c~d+é"})
            )
        )
        check("values needing every encoding rule are accepted", body.get("User", {}).get("UserName") == name, body)

        # Tampered: the SDK's own signed URL with one character of the signature changed.
        url, _ = rpc_signature_composer.get_signed_url(
            {"Action": "ListUsers", "Version": "2015-05-01"}, key_id, secret, "JSON", "GET", {}
        )
        signature = url.split("Signature=")[1].split("&")[0]
        flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
        tampered = url.replace("Signature=" + signature, "Signature=" + flipped)
        try:
            urllib.request.urlopen(f"http://{addr}{tampered}")
            code, status = None, 200
        except urllib.error.HTTPError as err:
            code, status = json.loads(err.read()).get("Code"), err.code
        check("a tampered signature is SignatureDoesNotMatch (400)", (code, status) == ("SignatureDoesNotMatch", 400), (code, status))

        # Reused nonce: the SDK's nonce source pinned to one value for two calls.
        original = parameter_helper.get_uuid
        parameter_helper.get_uuid = lambda: "akguard-crosscheck-fixed-nonce"
        try:
            first = server_error(client, request(addr, "2015-05-01", "ListUsers", "GET"))
            second = server_error(client, request(addr, "2015-05-01", "ListUsers", "GET"))
        finally:
            parameter_helper.get_uuid = original
        check("the first use of a nonce is accepted", first is None, first)
        check("a reused nonce is SignatureNonceUsed", second == "SignatureNonceUsed", second)

        wrong = AcsClient(key_id, secret + "x", "cn-hangzhou", auto_retry=False)
        code = server_error(wrong, request(addr, "2015-05-01", "ListUsers", "GET"))
        check("a wrong secret is SignatureDoesNotMatch", code == "SignatureDoesNotMatch", code)

        unknown = AcsClient("LTAI5tUNKNOWNKEY000000", secret, "cn-hangzhou", auto_retry=False)
        code = server_error(unknown, request(addr, "2015-05-01", "ListUsers", "GET"))
        check("an unknown key is InvalidAccessKeyId.NotFound", code == "InvalidAccessKeyId.NotFound", code)

        v3_checks(addr, key_id, secret)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(f"crosscheck: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
