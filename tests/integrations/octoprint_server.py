"""A real OctoPrint server for the plugin's tests: ``octoprint serve`` from this environment on
a temporary base folder and a free port, the Virtual Printer enabled, an admin user made with
``octoprint user add`` and the global API key in config.yaml (OctoPrint's own mechanisms), and
a thread playing a Tasmota plug whose power follows a known curve."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

API_KEY = "SLICERENERGYTESTKEY0123456789ABC"
USER, PASSWORD = "maker", "maker-password"
OCTOPRINT = Path(sys.executable).with_name("octoprint")
START_TIMEOUT_S = 90.0
# plugins that phone home or scan the network: off, so the server starts offline and quickly
DISABLED = [
    "tracking",
    "announcements",
    "softwareupdate",
    "discovery",
    "errortracking",
    "pi_support",
    "firmware_check",
    "file_check",
    "backup",
    "achievements",
    "health_check",
]


def plug_power_w(t_unix: float) -> float:
    """The plug's true power curve: 80 W ± 40 W, period 20 s (what a heater cycling looks like
    to a wall meter, coarsely)."""
    return 80.0 + 40.0 * math.sin(2 * math.pi * t_unix / 20.0)


def plug_energy_j(t0: float, t1: float) -> float:
    """Exact integral of :func:`plug_power_w` over [t0, t1]."""
    k = 2 * math.pi / 20.0
    return 80.0 * (t1 - t0) - 40.0 / k * (math.cos(k * t1) - math.cos(k * t0))


class TasmotaPlug:
    """``/cm?cmnd=Status 10`` answered like Tasmota: power in whole watts (its resolution)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                power = round(plug_power_w(time.time()))
                body = json.dumps({"StatusSNS": {"ENERGY": {"Power": power, "Voltage": 230}}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry_point_installed() -> bool:
    return any(
        ep.name == "slicer_energy"
        for ep in importlib.metadata.entry_points(group="octoprint.plugin")
    )


class OctoPrintServer:
    """``octoprint serve`` in a subprocess; :meth:`stop` in the fixture's teardown."""

    def __init__(self, base: Path, plugin_settings: dict) -> None:
        self.base = base
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ)
        repo = str(Path(__file__).resolve().parents[2])
        paths = [repo, self.env.get("PYTHONPATH", "")]
        if not _entry_point_installed():  # a checkout not installed since the plugin came in
            paths.insert(0, str(self._entry_point_shim()))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self._write_config(plugin_settings)
        self._octoprint("user", "add", USER, "--password", PASSWORD, "--admin")

    def _entry_point_shim(self) -> Path:
        """The package's ``octoprint.plugin`` entry point as pip would install it."""
        dist = self.base.parent / "entry-point" / "slicer_energy_checkout-0.dist-info"
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: slicer-energy-checkout\nVersion: 0\n"
        )
        (dist / "entry_points.txt").write_text(
            "[octoprint.plugin]\nslicer_energy = slicer_energy.integrations.octoprint.plugin\n"
        )
        return dist.parent

    def _write_config(self, plugin_settings: dict) -> None:
        config = {
            "server": {
                "firstRun": False,
                "onlineCheck": {"enabled": False},
                "pluginBlacklist": {"enabled": False},
            },
            "api": {"key": API_KEY},
            "plugins": {
                "_disabled": DISABLED,
                "virtual_printer": {"enabled": True},
                "slicer_energy": plugin_settings,
            },
            "serial": {"autoconnect": True, "port": "VIRTUAL", "baudrate": 115200},
        }
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "config.yaml").write_text(json.dumps(config))  # JSON is YAML

    def _octoprint(self, *args: str) -> None:
        subprocess.run(
            [str(OCTOPRINT), "--basedir", str(self.base), *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> OctoPrintServer:
        self.proc = subprocess.Popen(
            [
                str(OCTOPRINT),
                "serve",
                "--iknowwhatimdoing",
                "--basedir",
                str(self.base),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"octoprint serve exited with {self.proc.returncode}:\n" + self.log()[-3000:]
                )
            try:
                if self.get("/api/version").ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise RuntimeError("octoprint serve did not answer in time:\n" + self.log()[-3000:])

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.base / "logs" / "octoprint.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, headers={"X-Api-Key": API_KEY}, timeout=30, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, headers={"X-Api-Key": API_KEY}, timeout=120, **kw)

    def wait_for(self, what: str, probe, timeout_s: float = 120.0):
        """Poll ``probe()`` until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if value := probe():
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}")
