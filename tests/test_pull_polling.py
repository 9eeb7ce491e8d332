"""The status-polling state machine of the Bulk Data client, on scripted server answers.

The end-to-end behaviour is tested against the SMART reference server (test_pull.py); what that server
cannot be made to do on demand without blocking a client for five minutes, a 429 while polling, is
scripted here: each answer is one real HTTP response that the client reads through httpx.
"""

from __future__ import annotations

import httpx
import pytest

from chc_equity.pull.bulk import BulkClient, Policy, PullError

STATUS = "http://ehr.example/fhir/bulkstatus/1"
MANIFEST = {
    "transactionTime": "2026-12-01T00:00:00Z",
    "requiresAccessToken": False,
    "output": [{"type": "Patient", "url": "http://ehr.example/files/1.Patient.ndjson", "count": 3}],
    "error": [],
}


def client_answering(*answers: httpx.Response, policy: Policy) -> tuple[BulkClient, list[float]]:
    """A client whose server gives ``answers`` in order (the last one repeats); sleeps are recorded."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1]

    slept: list[float] = []
    client = BulkClient("http://ehr.example/fhir", httpx.Client(transport=httpx.MockTransport(handler)),
                        policy=policy, sleep=slept.append)
    return client, slept


def test_429_while_polling_waits_and_keeps_polling() -> None:
    busy = httpx.Response(202, headers={"Retry-After": "1", "X-Progress": "50%"})
    too_many = httpx.Response(429, headers={"Retry-After": "7"}, text="Too Many Requests")
    done = httpx.Response(200, json=MANIFEST)
    # attempts=1: _send hands every 429 straight back, so only the polling loop can survive it
    policy = Policy(attempts=1, backoff_s=0.5, max_wait_s=30, settle_reads=1, settle_s=0)
    client, slept = client_answering(busy, too_many, too_many, busy, done, done, policy=policy)
    manifest = client.wait_for_manifest(STATUS)
    assert [f.type for f in manifest.output] == ["Patient"]
    assert slept == [1.0, 7.0, 7.0, 1.0, 0]  # Retry-After honoured on 202 and 429; then one settle read


def test_429_without_retry_after_backs_off_doubling() -> None:
    too_many = httpx.Response(429, text="Too Many Requests")
    done = httpx.Response(200, json=MANIFEST)
    policy = Policy(attempts=1, backoff_s=0.5, max_wait_s=30, settle_reads=0)
    client, slept = client_answering(too_many, too_many, too_many, done, policy=policy)
    client.wait_for_manifest(STATUS)
    assert slept == [0.5, 1.0, 2.0]


def test_429_forever_ends_at_the_poll_deadline() -> None:
    too_many = httpx.Response(429, headers={"Retry-After": "1"}, text="Too Many Requests")
    policy = Policy(attempts=1, backoff_s=0.01, max_wait_s=0.01, poll_timeout_s=0.0)
    client, _ = client_answering(too_many, policy=policy)
    with pytest.raises(PullError, match="export not ready after 0s; cancelled"):
        client.wait_for_manifest(STATUS)


def test_a_server_error_while_polling_is_still_an_error() -> None:
    failed = httpx.Response(500, json={"resourceType": "OperationOutcome",
                                       "issue": [{"severity": "error", "code": "exception",
                                                  "diagnostics": "export crashed"}]})
    client, _ = client_answering(failed, policy=Policy(attempts=1))
    with pytest.raises(PullError, match="export failed: HTTP 500: export crashed"):
        client.wait_for_manifest(STATUS)


def test_a_transient_server_error_while_polling_is_asked_again() -> None:
    transient = httpx.Response(500, json={"resourceType": "OperationOutcome",
                                          "issue": [{"severity": "error", "code": "transient",
                                                     "diagnostics": "Please try again."}]})
    done = httpx.Response(200, json=MANIFEST)
    policy = Policy(attempts=1, backoff_s=0.5, max_wait_s=30, settle_reads=0)
    client, slept = client_answering(transient, transient, transient, transient, done, policy=policy)
    assert [f.type for f in client.wait_for_manifest(STATUS).output] == ["Patient"]
    assert slept == [0.5, 1.0, 2.0, 4.0]
