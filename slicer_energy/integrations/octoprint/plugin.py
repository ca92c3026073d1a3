"""The OctoPrint plugin: energy and cost of every uploaded file, measured kWh of every job,
calibration from the printer's own history.

Entry point ``octoprint.plugin`` -> ``slicer_energy = slicer_energy.integrations.octoprint.plugin``
(pyproject.toml), installed with ``pip install 'slicer-energy[octoprint]'`` into OctoPrint's
environment. The work lives in modules that do not import OctoPrint (``estimate``, ``store``,
``recorder``, ``worker``, ``calibrate``); this one wires them to OctoPrint's mixins and hooks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flask
import octoprint.plugin
from octoprint.access.permissions import Permissions
from octoprint.events import Events

from ...errors import SlicerEnergyError
from ...rig.meters import MeterSample
from .calibrate import calibrate_history
from .estimate import costs, estimate_file
from .recorder import JobRecorder
from .store import History
from .worker import WorkQueue

DEFAULTS: dict[str, Any] = {
    # what `slicer-energy gcode` uses when no --printer is given
    "printer": "prusa-mk3s",
    # assumption: a round household tariff, to be set by the user
    "price_per_kwh": 0.30,
    "currency": "EUR",
    # an ID of lca/background/electricity.toml (EU: EEA 2018, 281 g CO2e/kWh) or g/kWh
    "grid": "EU",
    # none, tasmota:HOST, shelly:HOST (or any `rig log --meter` spec)
    "meter": "none",
    # assumption: Tasmota and Shelly refresh their power reading about once a second
    "poll_interval_s": 1.0,
    # the printer setting before the last calibration switched it to the fitted profile
    "calibrated_base": "",
}
ESTIMATE_KEYS = ("printer", "price_per_kwh", "currency", "grid")
FAILED = {Events.PRINT_FAILED: "failed", Events.PRINT_CANCELLED: "cancelled"}


class SlicerEnergyPlugin(
    octoprint.plugin.StartupPlugin,
    octoprint.plugin.ShutdownPlugin,
    octoprint.plugin.SettingsPlugin,
    octoprint.plugin.TemplatePlugin,
    octoprint.plugin.AssetPlugin,
    octoprint.plugin.SimpleApiPlugin,
    octoprint.plugin.EventHandlerPlugin,
):
    """Settings, tab, file-list estimates, job recording and the REST API."""

    def __init__(self) -> None:
        super().__init__()
        self._history: History | None = None
        self._queue: WorkQueue | None = None
        self._recorder: JobRecorder | None = None
        self._meter_error: str | None = None

    # ------------------------------------------------------------------ life cycle
    def on_after_startup(self) -> None:
        data = Path(self.get_plugin_data_folder())
        self._history = History(data / "history.sqlite")
        self._queue = WorkQueue(self._estimate, self._logger)
        self._recorder = JobRecorder(self._history, data / "sessions", self._send_power)
        self._apply_meter()
        self._logger.info(
            "slicer-energy: history %s, meter %s", self._history.path, self._recorder.meter_spec
        )

    def on_shutdown(self) -> None:
        if self._recorder:
            self._recorder.stop()
        if self._queue:
            self._queue.stop()
        if self._history:
            self._history.close()

    def _apply_meter(self) -> None:
        """(Re)start polling the configured meter; a bad spec is reported, not fatal."""
        try:
            self._recorder.set_meter(
                self._settings.get(["meter"]), float(self._settings.get(["poll_interval_s"]))
            )
            self._meter_error = None
        except (SlicerEnergyError, ValueError) as exc:
            self._meter_error = str(exc)
            self._logger.warning("slicer-energy: meter not used: %s", exc)

    # ------------------------------------------------------------------ settings, UI
    def get_settings_defaults(self) -> dict[str, Any]:
        return dict(DEFAULTS)

    def on_settings_save(self, data: dict) -> dict:
        before = self._estimate_settings()
        meter_before = (self._settings.get(["meter"]), self._settings.get(["poll_interval_s"]))
        saved = octoprint.plugin.SettingsPlugin.on_settings_save(self, data)
        if self._recorder and meter_before != (
            self._settings.get(["meter"]),
            self._settings.get(["poll_interval_s"]),
        ):
            self._apply_meter()
        if self._history and self._estimate_settings() != before:
            for e in self._history.estimates():  # every stored estimate, with the new settings
                self._enqueue(e["origin"], e["path"])
        return saved

    def get_template_configs(self) -> list[dict]:
        return [
            {"type": "tab", "name": "Energy", "custom_bindings": True},
            {"type": "settings", "name": "Slicer Energy", "custom_bindings": False},
        ]

    def is_template_autoescaped(self) -> bool:
        return True

    def get_assets(self) -> dict[str, list[str]]:
        return {"js": ["js/slicer_energy.js"]}

    def get_template_folder(self) -> str:
        return str(Path(__file__).parent / "templates")

    def get_asset_folder(self) -> str:
        return str(Path(__file__).parent / "static")

    # ------------------------------------------------------------------ estimates
    def _estimate_settings(self) -> dict[str, Any]:
        return {k: self._settings.get([k]) for k in ESTIMATE_KEYS}

    def _enqueue(self, origin: str, path: str) -> None:
        settings = self._estimate_settings()
        self._history.put_estimate(origin, path, json.dumps(settings, sort_keys=True), "queued")
        self._queue.put((origin, path, settings))

    def _estimate(self, item: tuple[str, str, dict]) -> None:
        """The queue's work: one file's estimate, stored, put into the file's metadata (the
        file list shows it) and announced to the UI."""
        origin, path, settings = item
        key = json.dumps(settings, sort_keys=True)
        self._history.put_estimate(origin, path, key, "running")
        try:
            record = estimate_file(self._file_manager.path_on_disk(origin, path), settings)
        except (SlicerEnergyError, OSError) as exc:
            self._history.put_estimate(origin, path, key, "error", error=str(exc))
            self._logger.warning("slicer-energy: no estimate for %s: %s", path, exc)
        else:
            self._history.put_estimate(origin, path, key, "done", record)
            self._file_manager.set_additional_metadata(
                origin, path, self._identifier, record, overwrite=True
            )
        self._send({"type": "estimate", "origin": origin, "path": path})

    # ------------------------------------------------------------------ events and hooks
    def on_event(self, event: str, payload: dict | None) -> None:
        payload = payload or {}
        if self._history is None:
            return
        if event == Events.FILE_ADDED and "gcode" in (payload.get("type") or []):
            if payload.get("storage") == "local":
                self._enqueue("local", payload["path"])
        elif event == Events.FILE_REMOVED:
            self._history.drop_estimate(payload.get("storage", "local"), payload.get("path", ""))
        elif event == Events.PRINT_DONE or event in FAILED:
            status = FAILED.get(event, "done")
            job = self._recorder.end(status, str(payload.get("reason") or ""), self._pricing)
            if job is not None:
                self._send({"type": "job", "job": job})

    def _pricing(self, kwh: float) -> dict[str, Any]:
        """Cost and CO2e of a measured job; a bad price or grid setting leaves them empty
        rather than the job unclosed."""
        try:
            return costs(kwh, self._estimate_settings())
        except (SlicerEnergyError, ValueError) as exc:
            self._logger.warning("slicer-energy: no cost for the job: %s", exc)
            return {}

    def on_gcode_sent(self, comm, phase, cmd, cmd_type, gcode, *args, **kwargs) -> None:
        """Hook ``octoprint.comm.protocol.gcode.sent``: the job begins with its first file line
        (OctoPrint's PrintStarted event comes later, from another thread)."""
        rec = self._recorder
        if rec is None:
            return
        if rec.job_id is None and "source:file" in (kwargs.get("tags") or ()):
            self._begin_job()
        rec.sent(cmd)

    def on_gcode_received(self, comm, line: str, *args, **kwargs) -> str:
        """Hook ``octoprint.comm.protocol.gcode.received``: into the job's serial.log/temps."""
        if self._recorder is not None:
            self._recorder.received(line)
        return line

    def _begin_job(self) -> None:
        f = (self._printer.get_current_job() or {}).get("file") or {}
        origin, path = f.get("origin") or "local", f.get("path") or f.get("name") or "?"
        disk = self._file_manager.path_on_disk(origin, path) if origin == "local" else None
        est = self._history.estimate(origin, path)
        printer = str(self._settings.get(["printer"]))
        self._recorder.begin(origin, path, disk, printer, (est or {}).get("estimate"))

    # ------------------------------------------------------------------ REST API
    def is_api_protected(self) -> bool:
        return True

    def get_api_commands(self) -> dict[str, list[str]]:
        return {"estimate": ["path"], "calibrate": []}

    def on_api_command(self, command: str, data: dict):
        if command == "estimate":
            self._enqueue(data.get("origin", "local"), data["path"])
            return flask.jsonify(status="queued")
        if not Permissions.SETTINGS.can():
            flask.abort(403)
        return self._calibrate()

    def on_api_get(self, request):
        """Everything (estimates, jobs, live power), one file's estimate (``?path=``), or the
        jobs as CSV (``?format=csv``)."""
        if request.args.get("format") == "csv":
            return flask.Response(
                self._history.jobs_csv(),
                mimetype="text/csv",
                headers={"Content-Disposition": "attachment; filename=slicer-energy-jobs.csv"},
            )
        if path := request.args.get("path"):
            est = self._history.estimate(request.args.get("origin", "local"), path)
            return flask.jsonify(est) if est else flask.abort(404)
        return flask.jsonify(
            estimates=self._history.estimates(),
            jobs=self._history.jobs(),
            live={**self._recorder.live(), "meter_error": self._meter_error},
            settings=self._estimate_settings(),
        )

    def _calibrate(self):
        """Fit the calibrated profile to the finished jobs, save it in the data folder and make
        it the printer setting (the previous one stays the base of the next fit)."""
        printer = str(self._settings.get(["printer"]))
        out = Path(self.get_plugin_data_folder()) / "calibrated" / "octoprint-calibrated.toml"
        base = self._settings.get(["calibrated_base"]) if printer == str(out) else printer
        folders = [
            j["session_folder"]
            for j in self._history.jobs()
            if j["status"] == "done" and j["measured_kwh"] is not None
        ]
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            report = calibrate_history(folders, base, out)
        except SlicerEnergyError as exc:
            return flask.make_response(flask.jsonify(error=str(exc)), 400)
        self._settings.set(["calibrated_base"], base)
        self._settings.set(["printer"], str(out))
        self._settings.save()
        for e in self._history.estimates():
            self._enqueue(e["origin"], e["path"])
        return flask.jsonify(report)

    # ------------------------------------------------------------------ UI messages
    def _send(self, data: dict) -> None:
        self._plugin_manager.send_plugin_message(self._identifier, data)

    def _send_power(self, s: MeterSample) -> None:
        self._send({"type": "power", "power_w": s.power_w, "t_unix": s.t_s})


__plugin_name__ = "Slicer Energy"
__plugin_pythoncompat__ = ">=3.10,<4"
__plugin_description__ = "Predicted and measured energy, cost and CO2 of every print."


def __plugin_load__() -> None:
    global __plugin_implementation__, __plugin_hooks__
    __plugin_implementation__ = SlicerEnergyPlugin()
    __plugin_hooks__ = {
        "octoprint.comm.protocol.gcode.sent": __plugin_implementation__.on_gcode_sent,
        "octoprint.comm.protocol.gcode.received": __plugin_implementation__.on_gcode_received,
    }
