"""A Ray the project starts is kept off the network and keeps Ray's token authentication on.

The Ray under test is started the way runs start theirs (:func:`tune_configs.ray_session.connect_ray`,
dashboard included) in a process of its own (``tests/cluster_driver.py private``). Checked: every
port its processes listen on is a loopback one, a client without the token (or with a wrong one)
is refused while one with it connects, and the dashboard answers HTTP 401 without the token.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT = """
import logging, sys, ray
try:
    ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
    print("CONNECTED", ray.get(ray.remote(num_cpus=0)(lambda: 42).remote()))
except Exception as exc:
    print("REFUSED", type(exc).__name__)
"""


@pytest.fixture(scope="module")
def private_ray():
    pytest.importorskip("ray.dashboard.optional_deps", reason="the dashboard needs ray[default]")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.cluster_driver", "private"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = None
        for line in proc.stdout:
            if line.startswith("RESULT "):
                info = json.loads(line[len("RESULT "):])
                break
        assert info is not None, f"the private Ray did not start (status {proc.poll()})"
        yield info
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _process_tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    return tree


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    """``(address, port)`` of every TCP socket in LISTEN state owned by ``pids`` (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
                if m:
                    inodes.add(m.group(1))
        except OSError:
            continue
    found = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                continue
            hexaddr, hexport = cols[1].split(":")
            raw = bytes.fromhex(hexaddr)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # per-word little-endian
            found.append((str(ipaddress.ip_address(raw)), int(hexport, 16)))
    return found


def _is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _token() -> str:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    return Path(path).read_text().strip()


def test_address_parsing_of_proc_tables():
    assert _is_loopback("127.0.0.1") and _is_loopback("::ffff:127.0.0.1") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("::") and not _is_loopback("192.0.2.2")


@pytest.mark.slow
def test_private_ray_listens_on_loopback_only(private_ray):
    assert private_ray["node_ip"] == "127.0.0.1" and private_ray["gcs"].startswith("127.0.0.1:")
    assert private_ray["dashboard"].startswith("127.0.0.1:")
    assert private_ray["auth_mode"] == "token"
    ports = _listening(_process_tree(private_ray["pid"]))
    assert len(ports) >= 5, ports  # GCS, raylet (2), a worker, the dashboard and its agent at least
    assert int(private_ray["gcs"].rsplit(":", 1)[1]) in {p for _, p in ports}
    exposed = [(a, p) for a, p in ports if not _is_loopback(a)]
    assert not exposed, f"listening beyond loopback: {exposed}"


@pytest.mark.slow
def test_client_without_the_token_is_refused(private_ray, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    # a process on this machine: it may use the loopback node address (as the project's own do)
    base["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    (tmp_path / "home").mkdir()
    clients = {
        "no token": {**base, "HOME": str(tmp_path / "home")},
        "wrong token": {**base, "HOME": str(tmp_path / "home"), "RAY_AUTH_MODE": "token",
                        "RAY_AUTH_TOKEN": secrets.token_hex(16)},
        "the token": {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _token()},
    }
    procs = {name: subprocess.Popen([sys.executable, "-c", CLIENT, private_ray["gcs"]], env=env, cwd=tmp_path,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for name, env in clients.items()}
    out = {name: p.communicate(timeout=240)[0].strip().splitlines()[-1:] for name, p in procs.items()}
    assert out["no token"] and out["no token"][0].startswith("REFUSED"), out
    assert out["wrong token"] and out["wrong token"][0].startswith("REFUSED"), out
    assert out["the token"] == ["CONNECTED 42"], out  # the refusals are about the token, not reachability


@pytest.mark.slow
def test_dashboard_answers_401_without_the_token(private_ray):
    url = f"http://{private_ray['dashboard']}/api/version"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=30)
    assert info.value.code == 401
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {_token()}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200 and "ray_version" in json.loads(resp.read())


def test_the_project_never_turns_token_authentication_off():
    """No module of the project sets RAY_AUTH_MODE (Ray's opt-out is the user's to set)."""
    # environ["RAY_AUTH_MODE"] = ..., {"RAY_AUTH_MODE": ...}, setdefault / putenv("RAY_AUTH_MODE", ...); not .get(...)
    setting = re.compile(r"""(?<!get\()["']RAY_AUTH_MODE["']\s*(\]\s*=[^=]|:\s*["']|,\s*["'])""")
    offenders = []
    for package in ("exposure_env", "rewards", "policies", "tune_configs", "benchmarks"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            offenders += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(text.splitlines(), 1)
                          if setting.search(line)]
    assert not offenders, offenders
    for line in ('os.environ["RAY_AUTH_MODE"] = "disabled"', 'env = {"RAY_AUTH_MODE": "disabled"}',
                 'os.environ.setdefault("RAY_AUTH_MODE", "disabled")'):
        assert setting.search(line), line  # the check can fail
    assert not setting.search('os.environ.get("RAY_AUTH_MODE", "")')
