"""Pays one URL with the official Python client (x402 + eth-account) from a local key and prints
one JSON line: {"status", "body", "receipt", "error"}.

usage: PAYER_KEY=0x… python pay.py URL [METHOD] [JSON_BODY]
"""
import json
import os
import sys

from eth_account import Account
from x402 import x402ClientSync
from x402.http import x402HTTPClientSync
from x402.http.clients import x402_requests
from x402.mechanisms.evm import EthAccountSigner
from x402.mechanisms.evm.exact import register_exact_evm_client


def main() -> None:
    if len(sys.argv) < 2 or "PAYER_KEY" not in os.environ:
        print("usage: PAYER_KEY=0x… python pay.py URL [METHOD] [JSON_BODY]", file=sys.stderr)
        sys.exit(2)
    url = sys.argv[1]
    method = sys.argv[2] if len(sys.argv) > 2 else "GET"
    body = sys.argv[3] if len(sys.argv) > 3 else None
    client = x402ClientSync()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(os.environ["PAYER_KEY"])))
    result = {"status": 0, "body": None, "receipt": None, "error": None}
    try:
        with x402_requests(client) as http:
            kwargs = {"timeout": 60}
            if body is not None:
                kwargs["data"] = body
                kwargs["headers"] = {"content-type": "application/json"}
            response = http.request(method, url, **kwargs)
        result["status"] = response.status_code
        result["body"] = response.text
        try:
            receipt = x402HTTPClientSync(client).get_payment_settle_response(lambda n: response.headers.get(n))
            result["receipt"] = receipt.model_dump(by_alias=True, exclude_none=True)
        except Exception as e:  # noqa: BLE001 - report, do not crash
            result["error"] = f"no receipt: {e}"
    except Exception as e:  # noqa: BLE001
        result["error"] = str(e)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
