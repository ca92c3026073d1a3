"""The OctoPrint plugin inside a real OctoPrint: loads cleanly, estimates an upload, measures a
job printed on OctoPrint's Virtual Printer against a Tasmota plug with a known power curve,
keeps the history over a restart, exports it as CSV, and calibrates from it."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from octoprint_server import PASSWORD, USER, OctoPrintServer, TasmotaPlug, plug_energy_j

from slicer_energy.calib.inputs.session import load_session
from slicer_energy.cli import main

pytest.importorskip("octoprint")

pytestmark = pytest.mark.slow

POLL_S = 0.25
PRICE, CURRENCY, GRID = 0.40, "CHF", "EU"
EU_G_PER_KWH = 281.0  # EEA, EU-27 2018 (lca/background/electricity.toml [EU])
DWELL_S = 8
GCODE = "\n".join(
    ["; a short job for the Virtual Printer", "G21", "G90", "M83", "G28", "G1 Z0.3 F600"]
    + [f"G1 X{10 + 5 * (i % 8)} Y{10 + 5 * (i // 8)} E0.5 F1800" for i in range(24)]
    + [f"G4 S{DWELL_S}", "G1 Z10 F600", "M84", ""]
)


@pytest.fixture(scope="module")
def plug():
    p = TasmotaPlug()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def octo(tmp_path_factory, plug):
    settings = {
        "meter": f"tasmota:{plug.host}",
        "poll_interval_s": POLL_S,
        "price_per_kwh": PRICE,
        "currency": CURRENCY,
        "grid": GRID,
    }
    server = OctoPrintServer(tmp_path_factory.mktemp("octoprint") / "base", settings)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gcode_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("gcode") / "short-job.gcode"
    p.write_text(GCODE)
    return p


@pytest.fixture(scope="module")
def uploaded(octo, gcode_file):
    """The file uploaded through OctoPrint's REST API and its estimate, once the plugin's
    queue has it."""
    with gcode_file.open("rb") as fh:
        r = octo.post("/api/files/local", files={"file": (gcode_file.name, fh)})
    assert r.status_code == 201, r.text

    def estimate():
        r = octo.get("/api/plugin/slicer_energy", params={"path": gcode_file.name})
        return r.ok and r.json()["status"] in ("done", "error") and r.json()

    return octo.wait_for("the plugin's estimate", estimate, 120)


@pytest.fixture(scope="module")
def job(octo, uploaded, gcode_file):
    """The file printed on the Virtual Printer; the plugin's record of the job."""
    octo.wait_for("the Virtual Printer", lambda: octo.get("/api/printer").ok, 60)
    r = octo.post(f"/api/files/local/{gcode_file.name}", json={"command": "select", "print": True})
    assert r.status_code == 204, r.text

    def finished():
        jobs = octo.get("/api/plugin/slicer_energy").json()["jobs"]
        return jobs and jobs[-1]["status"] != "printing" and jobs[-1]

    return octo.wait_for("the job to finish", finished, 180)


def test_plugin_loads_without_errors(octo):
    log = octo.log()
    assert re.search(r"Slicer Energy \(\S+\) = .*slicer_energy", log), log[-2000:]
    ours = [ln for ln in log.splitlines() if "slicer_energy" in ln or "slicer-energy" in ln]
    bad = [ln for ln in ours if " - ERROR - " in ln or " - WARNING - " in ln or "Traceback" in ln]
    assert not bad, bad


def test_upload_is_estimated_like_the_cli(octo, uploaded, gcode_file, capsys):
    assert uploaded["status"] == "done", uploaded
    est = uploaded["estimate"]
    assert main(["gcode", str(gcode_file), "--printer", "prusa-mk3s", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert est["energy_kwh"] == pytest.approx(cli["energy_kwh"], rel=1e-9)
    assert est["time_s"] == pytest.approx(cli["time_s"], rel=1e-9)
    assert est["time_s"] >= DWELL_S
    assert est["cost"] == pytest.approx(PRICE * cli["energy_kwh"], rel=1e-9)
    assert est["currency"] == CURRENCY
    assert est["co2e_g"] == pytest.approx(EU_G_PER_KWH * cli["energy_kwh"], rel=1e-9)
    # the same record as the CLI's, priced with the plugin's settings
    assert est["record"].keys() == cli.keys()
    assert est["record"]["energy_kwh"] == cli["energy_kwh"]
    assert est["record"]["cost"]["total"] == est["cost"]
    # OctoPrint's own file list carries it (the UI's file details show it)
    files = octo.get(f"/api/files/local/{gcode_file.name}").json()
    assert files["slicer_energy"]["energy_kwh"] == pytest.approx(est["energy_kwh"])


def test_job_measured_against_the_plug(octo, job, uploaded):
    assert job["status"] == "done", job
    t0, t1 = job["started_unix"], job["ended_unix"]
    assert t1 - t0 >= DWELL_S
    true_j = plug_energy_j(t0, t1)
    # the plug reports whole watts (±0.5 W); the rest is the reading's time stamp against the
    # plug's (same machine: milliseconds, at most 12.6 W/s of slope)
    tol_j = 0.5 * (t1 - t0) + 0.1 * (t1 - t0) + 2.0
    assert abs(job["measured_kwh"] * 3.6e6 - true_j) <= tol_j, (job, true_j / 3.6e6)
    assert job["readings"] >= 0.8 * (t1 - t0) / POLL_S
    assert job["predicted_kwh"] == pytest.approx(uploaded["estimate"]["energy_kwh"])
    assert job["cost"] == pytest.approx(PRICE * job["measured_kwh"])


def test_job_session_folder_reads_back_for_calibration(job):
    folder = Path(job["session_folder"])
    serial = (folder / "serial.log").read_text()
    assert "print started" in serial and "print done" in serial and "\tphase: print" in serial
    s = load_session(folder)  # what `slicer-energy calibrate` reads
    assert s.job_t1_s - s.job_t0_s == pytest.approx(
        job["ended_unix"] - job["started_unix"], abs=0.01
    )
    assert any(ln.startswith("G4") for ln in s.gcode_lines)
    # the folder holds the reading before the start; its last is up to one poll before the end
    max_w = 120.0
    assert abs(s.job_energy_j - job["measured_kwh"] * 3.6e6) <= max_w * POLL_S + 1.0


def test_jobs_export_as_csv(octo, job):
    r = octo.get("/api/plugin/slicer_energy", params={"format": "csv"})
    assert r.ok and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert float(rows[-1]["measured_kwh"]) == pytest.approx(job["measured_kwh"])


def test_history_survives_a_restart(octo, job):
    octo.restart()
    jobs = octo.get("/api/plugin/slicer_energy").json()["jobs"]
    assert jobs[-1] == job


def test_calibrate_says_why_the_virtual_printer_job_cannot_be_used(octo, job):
    """OctoPrint's Virtual Printer prints no heater output (``@:``), which the session fit
    needs: the action answers with the reason and leaves the printer setting alone (the
    fit itself: test_octoprint_parts.py, on a rig session)."""
    r = octo.post("/api/plugin/slicer_energy", json={"command": "calibrate"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "no heater output" in err and "\n" not in err
    assert octo.get("/api/plugin/slicer_energy").json()["settings"]["printer"] == "prusa-mk3s"


@pytest.fixture
def browser():
    """Headless Chromium from the OS packages (``apt-get install chromium chromium-driver``)
    driven by Selenium; skipped where either is missing."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_exe = shutil.which("chromedriver")
    if not chromium or not driver_exe:
        pytest.skip("chromium and chromedriver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1400"):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(driver_exe))
    try:
        yield driver
    finally:
        driver.quit()


def test_tab_shows_the_job_in_a_browser(octo, job, browser, tmp_path):
    """Log in as the maker, open the Energy tab, see the job's numbers; the screenshot goes to
    docs/octoprint-tab.png (docs/octoprint.md shows it) when SLICER_ENERGY_UPDATE_DOCS=1."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(octo.url + "/")
    wait.until(ec.element_to_be_clickable((By.ID, "login-user"))).send_keys(USER)
    browser.find_element(By.ID, "login-password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait.until(ec.element_to_be_clickable((By.ID, "tab_plugin_slicer_energy_link"))).click()
    measured = f"{1000 * job['measured_kwh']:.2f} Wh"  # the tab's format below 1 kWh
    predicted = f"{1000 * job['predicted_kwh']:.2f} Wh"
    row = (By.CSS_SELECTOR, "#slicer_energy_jobs tr.se-job")
    wait.until(ec.text_to_be_present_in_element(row, measured))
    text = browser.find_element(*row).text
    assert predicted in text and "short-job.gcode" in text and "done" in text
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".se-power").text.endswith(" W"))
    shot = tmp_path / "octoprint-tab.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("SLICER_ENERGY_UPDATE_DOCS") == "1":
        shutil.copy(shot, Path(__file__).resolve().parents[2] / "docs" / "octoprint-tab.png")
