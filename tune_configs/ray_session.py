"""Ray for a run, a Tune sweep or a batch job: a private single-node Ray kept off the network,
or an existing cluster joined by address.

**Private** (no address, no ``RAY_ADDRESS``): this machine's CPUs and GPUs, an object store of
:data:`OBJECT_STORE_BYTES`, and every Ray server on the loopback interface: the node IP is
127.0.0.1 (:func:`loopback_only`), so the GCS, raylet, object manager, worker, runtime-env and
dashboard-agent ports listen on 127.0.0.1 only (checked with ``ss -ltn`` in the tests). The
dashboard, only on request, listens on ``dashboard_host`` (127.0.0.1 unless the user asks for
another). Ray's token authentication stays on: ``ray.init`` enables it for a new local Ray
(token in ``~/.ray/auth_token``); a client without the token is refused and the dashboard
answers HTTP 401. The one opt-out is Ray's own ``RAY_AUTH_MODE=disabled``, set by the user
(a trusted single-user machine); nothing here sets it, and a run says when it is off.

**Joining** (``address`` ``auto`` | ``HOST:PORT``, or ``RAY_ADDRESS``): no resource arguments
(the cluster's own count); the token (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``) is presented whenever one is available, also for an explicit address
(where Ray itself would not); an address that does not answer, or refuses this client, is one
:class:`~tune_configs.settings.ConfigError` line. A loopback address (a cluster started with
:func:`local_cluster`) is joined from the loopback node IP.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from typing import Any, Iterator

from exposure_env.system import usable_cpus

from .settings import ConfigError, cluster_address

#: Ray's object store for a private Ray (bytes): the data packs live there once per node.
OBJECT_STORE_BYTES = 2 << 30
#: Where the dashboard listens unless the user names another host (``--dashboard-host``).
DASHBOARD_HOST = "127.0.0.1"
#: Seconds to wait for a TCP answer from ``HOST:PORT`` before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_QUIET = dict(logging_level=logging.ERROR, log_to_driver=False)


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Ray nodes started (or joined) inside this block take 127.0.0.1 as their node IP.

    Ray 2.60 maps a requested node IP of 127.0.0.1 to the machine's routable address on Linux
    (``services.resolve_ip_for_localhost``) unless its "local only" switch
    (``ray_constants.ENABLE_RAY_CLUSTER``, the ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` variable, read
    at import) is off; with it off for the start-up, every gRPC server binds 127.0.0.1.
    """
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def auth_disabled() -> bool:
    """True when the user turned Ray's token authentication off (``RAY_AUTH_MODE=disabled``)."""
    return os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled"


def _present_token_if_available() -> None:
    """Token mode for this process when a token exists and the user set no ``RAY_AUTH_MODE``."""
    try:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    except ImportError:  # pragma: no cover - another Ray: it decides itself
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _split_host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` (``[v6]:PORT``, ``ray://HOST:PORT`` too); None for anything else."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def resolve_address(address: str) -> str:
    """``HOST:PORT`` of ``address`` (``auto``: the cluster started on this machine, e.g. by
    ``ray start --head``); :class:`ConfigError` when ``auto`` finds none."""
    if address.startswith("ray://") or _split_host_port(address):
        return address
    from ray._private import services

    try:
        with loopback_only():  # a loopback cluster's address stays loopback (Ray would map it to this host's IP)
            found = services.canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"--address {address}: {str(exc).strip().splitlines()[0]}") from None
    if not found:
        raise ConfigError(f"--address {address}: no running Ray cluster found on this machine "
                          "(start one with `ray start --head`, or give HOST:PORT)")
    return found


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """:class:`ConfigError` (one line) unless ``HOST:PORT`` accepts a TCP connection."""
    hp = _split_host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({reason}); "
                          "check the head's address and port (`ray status` on the head)") from None


def join_cluster(address: str) -> None:
    """``ray.init`` on the cluster at ``address`` (module docstring); ConfigError on failure."""
    import ray

    target = resolve_address(address)
    check_reachable(target)
    _present_token_if_available()
    hp = _split_host_port(target)
    scope = loopback_only() if hp and hp[0] in LOOPBACK_HOSTS else contextlib.nullcontext()
    try:
        with scope:
            ray.init(address=target, **_QUIET)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--address {address}: could not join the Ray cluster ({first}); a cluster with token "
                          "authentication needs its token here (~/.ray/auth_token or RAY_AUTH_TOKEN)") from None


def start_private_ray(num_cpus: int | None = None, num_gpus: float = 0, *, object_store_bytes: int = OBJECT_STORE_BYTES,
                      dashboard: bool = False, dashboard_host: str = DASHBOARD_HOST, temp_dir: str | None = None) -> None:
    """A single-node Ray on the loopback interface (module docstring): ``num_cpus`` (default:
    this machine's usable ones), ``ceil(num_gpus)`` GPUs, dashboard only with ``dashboard``."""
    import ray

    kwargs: dict[str, Any] = dict(
        address="local",  # a new Ray even when ray_current_cluster names a running one
        num_cpus=num_cpus or usable_cpus(),
        num_gpus=int(math.ceil(num_gpus)) if num_gpus else 0,
        object_store_memory=object_store_bytes,
        include_dashboard=bool(dashboard),
        _node_ip_address="127.0.0.1",
        **_QUIET,
    )
    if dashboard:
        kwargs["dashboard_host"] = dashboard_host or DASHBOARD_HOST
    if temp_dir:
        kwargs["_temp_dir"] = temp_dir
    with loopback_only():
        ray.init(**kwargs)


def connect_ray(address: str | None = None, *, num_cpus: int | None = None, num_gpus: float = 0, dashboard: bool = False,
                dashboard_host: str = DASHBOARD_HOST, temp_dir: str | None = None) -> bool:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a private Ray; nothing
    when Ray is already up in this process. True when this call started or joined it (the
    caller then shuts it down). Resource arguments apply to a private Ray only."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if auth_disabled():
        logging.getLogger(__name__).warning(
            "Ray token authentication is off (RAY_AUTH_MODE=disabled): anyone who reaches this Ray can run code")
    target = cluster_address(address)
    if target is not None:
        join_cluster(target)
    else:
        start_private_ray(num_cpus, num_gpus, dashboard=dashboard, dashboard_host=dashboard_host, temp_dir=temp_dir)
    return True


def init_ray(s, temp_dir: str | None = None) -> bool:
    """:func:`connect_ray` for the run settings ``s`` (:class:`tune_configs.settings.TrainSettings`:
    address, CPUs, GPUs, dashboard and its host); True when this call started or joined Ray."""
    return connect_ray(s.address, num_cpus=s.num_cpus, num_gpus=s.num_gpus, dashboard=s.dashboard,
                       dashboard_host=s.dashboard_host or DASHBOARD_HOST, temp_dir=temp_dir)


def cluster_totals() -> dict[str, float]:
    """``{"CPU": n, "GPU": g, "nodes": k}`` of the Ray this process is connected to (alive nodes)."""
    import ray

    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return {"CPU": float(res.get("CPU", 0)), "GPU": float(res.get("GPU", 0)), "nodes": nodes}


def local_cluster(head: dict | None = None, workers: list[dict] | tuple = (), temp_dir: str | None = None):
    """A multi-node Ray on this machine (``ray.cluster_utils.Cluster``: one raylet per node),
    for tests and benchmarks: loopback only, token authentication on, no dashboard. ``head`` /
    each of ``workers``: ``add_node`` arguments (``num_cpus``, ``num_gpus``, ``resources``,
    ``object_store_memory``). Join it with ``connect_ray(cluster.address)``; add nodes later
    inside :func:`loopback_only`. The caller shuts it down (``cluster.shutdown()``).

    ``temp_dir`` (a short path: Ray's socket names must stay under 108 characters) becomes this
    process's ``RAY_TMPDIR``: the cluster's session files and its ``ray_current_cluster`` address
    file (what ``ray.init()`` and ``--address auto`` find) go there instead of ``/tmp/ray``, so
    other Ray users of the machine do not find (and join) it. Meant for a process of its own."""
    from ray._private.authentication.authentication_token_setup import (
        enable_token_auth_by_default,
        ensure_token_if_auth_enabled,
    )
    from ray.cluster_utils import Cluster

    if auth_disabled():
        raise ConfigError("local_cluster: RAY_AUTH_MODE=disabled is set; the test cluster runs with token authentication")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if temp_dir is not None:
        os.makedirs(temp_dir, exist_ok=True)
        os.environ["RAY_TMPDIR"] = temp_dir
    enable_token_auth_by_default()  # as ray.init does for a new local Ray: token mode, a token file
    ensure_token_if_auth_enabled(None, create_token_if_missing=True)
    base = dict(num_cpus=1, object_store_memory=256 << 20, include_dashboard=False)
    with loopback_only():
        cluster = Cluster(initialize_head=True, head_node_args={**base, **(head or {})})
        for w in workers:
            cluster.add_node(**{**base, **dict(w)})
    return cluster


def quiet_rllib() -> None:
    """Only errors from RLlib's, Tune's and Ray's Python loggers."""
    for name in ("ray.rllib", "ray.tune", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
