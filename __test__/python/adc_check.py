"""A Python application that knows only Application Default Credentials (issue 21).

Run with GCE_METADATA_HOST and GCE_METADATA_IP pointing at the metadata server, no credential
file, and PYTHONPATH=<google-auth site dir>. argv: the emulator URL, the Cloud Run stand-in URL.
Any connection or name lookup other than loopback is refused before a packet leaves, and
reported on stderr as LOOPBACK-GUARD. Prints one JSON line.
"""
import json
import socket
import sys

LOOPBACK = ("127.", "::1", "localhost")


def _refuse(target):
    sys.stderr.write("LOOPBACK-GUARD %s\n" % (target,))
    return OSError(101, "loopback-only: refused %s" % (target,))


_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and not str(host).startswith(LOOPBACK):
        raise socket.gaierror(-2, "loopback-only: refused %s" % (_refuse(host),))
    return _getaddrinfo(host, *args, **kwargs)


_connect = socket.socket.connect


def _guarded_connect(self, address):
    if isinstance(address, tuple) and not str(address[0]).startswith(LOOPBACK):
        raise _refuse(address[0])
    return _connect(self, address)


socket.getaddrinfo = _guarded_getaddrinfo
socket.socket.connect = _guarded_connect

import google.auth  # noqa: E402
import requests  # noqa: E402
import google.auth.compute_engine  # noqa: E402
import google.oauth2.id_token  # noqa: E402
from google.auth.transport.requests import AuthorizedSession, Request  # noqa: E402

emulator, service = sys.argv[1], sys.argv[2]

credentials, project = google.auth.default()
compute = isinstance(credentials, google.auth.compute_engine.Credentials)
credentials.refresh(Request())
session = AuthorizedSession(credentials)
answer = session.post(
    "%s/bigquery/v2/projects/%s/queries" % (emulator, project),
    json={"query": "SELECT greeting, principal, n FROM emulator"},
)
principal = answer.json()["rows"][0]["f"][1]["v"]

id_token = google.oauth2.id_token.fetch_id_token(Request(), service)
run = requests.get(service, headers={"Authorization": "Bearer " + id_token})

print(json.dumps({
    "compute": compute,
    "project": project,
    "email": credentials.service_account_email,
    "token": credentials.token,
    "bigqueryStatus": answer.status_code,
    "principal": principal,
    "idToken": id_token,
    "runStatus": run.status_code,
    "run": run.json(),
}))
