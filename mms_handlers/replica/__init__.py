"""One serving replica: MMS plus a small front door that gives it what MMS 1.1.11 lacks.

MMS's `/ping` is HTTP 200 even when Unhealthy, it answers `/v2/...` with 404 and has no
Prometheus endpoint. The front door (`frontdoor.py`) sits on the replica's public port and
serves liveness and readiness as status codes (`health.py`), the Open Inference Protocol V2
paths (`oip.py`, inference forwarded to MMS's `/predictions/NAME`, whose handler already reads
V2 bodies), and `/metrics` (`metrics.py`); every other path goes to MMS unchanged.
`python -m mms_handlers.replica` runs one replica in the foreground and drains it on SIGTERM
(`runner.py`); the container image and `edgecloud serve --replicas` both run exactly that.
"""
