"""HAProxy's configuration for the gateway, and the HAProxy process.

What HAProxy does here: active checks on each replica's real readiness (`GET /v2/health/ready`,
200 only; never MMS's `/ping`, which is 200 even when Unhealthy), retries on another replica when
a connection fails, comes back empty or gets a 502/503 (`retry-on`, `option redispatch`; bodies
are buffered so a POST can be sent again: inference is idempotent), least-connections
balancing, the registry and page routed to the static site, and `/metrics` to the federation
(HAProxy's own exporter at `/metrics/gateway`). Bodies larger than `tune.bufsize` are not retried.
With aggregators (`serve --replicas N --federated`), `/federated` goes to them, checked on `/ready`;
an update retried after a lost answer is refused 409 duplicate-client if the first one was stored.
Ignored: TLS and authentication, which an operator adds in front (docs/deploying.md).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mms_handlers.process_group import stop_process_group

SITE_PREFIXES = ("/models/", "/demo/", "/src/", "/vendor/", "/harness/", "/bench/")
SITE_PATHS = ("/", "/index.html", "/config.json", "/onnx-wasm.wasm")
BUFFER_BYTES = 65536  # a body up to this size can be retried on another replica
# A check answers from the replica's last look (runner.READINESS_INTERVAL_S); 2 s covers a busy machine.
# Down after about 1 s of failed checks (fastinter once one failed): keep drains longer than that.
CHECK = "inter 500ms fastinter 250ms downinter 1s fall 3 rise 2"


@dataclass(frozen=True)
class GatewayLayout:
    host: str
    port: int
    replica_ports: tuple[int, ...]  # the replicas' front doors, on 127.0.0.1
    site_port: int
    federation_port: int
    max_body_bytes: int = 6553500
    aggregator_ports: tuple[int, ...] = ()  # `edgecloud aggregate` processes, on 127.0.0.1


def _aggregators(layout: GatewayLayout) -> tuple[str, str]:
    """The /federated route and its backend, or nothing without aggregators."""
    if not layout.aggregator_ports:
        return "", ""
    servers = "\n".join(f"    server aggregator{i} 127.0.0.1:{port} check" for i, port in enumerate(layout.aggregator_ports))
    route = "    acl federated path /federated\n    acl federated path_beg /federated/\n    use_backend aggregators if federated\n"
    backend = f"""
backend aggregators
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
    default-server {CHECK}
{servers}
"""
    return route, backend


def haproxy_config(layout: GatewayLayout) -> str:
    servers = "\n".join(f"    server replica{i} 127.0.0.1:{port} check" for i, port in enumerate(layout.replica_ports))
    federated_route, federated_backend = _aggregators(layout)
    return f"""\
# Written by edgecloud serve --replicas (edgecloud/gateway/haproxy.py); deploy/haproxy/haproxy.cfg is an example.
global
    maxconn 2048
    tune.bufsize {BUFFER_BYTES}
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlog-normal  # only failed, retried or redispatched requests are logged
    timeout connect 1s
    timeout client 60s
    timeout server 120s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 30s
    timeout check 2s
    # The whole body is read before a replica is picked, so a failed attempt can be sent again.
    option http-buffer-request
    retries 3
    retry-on conn-failure empty-response 502 503
    option redispatch 1

frontend gateway
    bind {layout.host}:{layout.port}
    http-request deny deny_status 413 if {{ req.body_size gt {layout.max_body_bytes} }}
    http-request use-service prometheus-exporter if {{ path /metrics/gateway }}
    acl site_path path_beg {" ".join(SITE_PREFIXES)}
    acl site_path path {" ".join(SITE_PATHS)}
    acl metrics path /metrics
    use_backend site if site_path
    use_backend federation if metrics
{federated_route}    default_backend replicas

backend replicas
    balance leastconn
    option httpchk GET /v2/health/ready
    http-check expect status 200
    default-server {CHECK}
{servers}

backend site
    server site 127.0.0.1:{layout.site_port}

backend federation
    server federation 127.0.0.1:{layout.federation_port}
{federated_backend}"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        raise FileNotFoundError("haproxy is not installed (Debian package haproxy; `make system` installs it)")
    return found


class Haproxy:
    """HAProxy in the foreground on a written config; stop() is a soft stop (connections finish)."""

    def __init__(self, config_text: str, folder: Path, address: tuple[str, int]) -> None:
        self.address = ("127.0.0.1" if address[0] in ("0.0.0.0", "::", "[::]") else address[0], address[1])
        self.config_file = Path(folder) / "haproxy.cfg"
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(config_text)
        self.log_file = self.config_file.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Haproxy":
        binary = haproxy_binary()
        checked = subprocess.run([binary, "-c", "-q", "-f", str(self.config_file)], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"HAProxy refused {self.config_file}: {(checked.stderr or checked.stdout).strip()}")
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [binary, "-db", "-f", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while True:  # started only once it accepts connections (a busy machine may take a while)
            if self.process.poll() is not None:
                raise RuntimeError(f"HAProxy exited at start; see {self.log_file}")
            try:
                socket.create_connection(self.address, timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"HAProxy does not listen on {self.address[0]}:{self.address[1]}; see {self.log_file}") from None
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Soft stop (SIGUSR1: stop listening, finish the requests in flight), then whatever is left."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGUSR1)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        stop_process_group(process, 1.0)
