"""`edgecloud serve --replicas N`: HAProxy in front of N replicas (MMS + front door each), the page and
registry behind the same gateway, and /metrics federated from the replicas.

`haproxy.py` writes HAProxy's configuration (the load balancing, checks and retries are HAProxy's;
nothing here balances), `replicas.py` starts and restarts the replica processes, `federation.py`
merges their /metrics, `stack.py` strings them together.
"""
