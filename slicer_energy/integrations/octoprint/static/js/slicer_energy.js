/* slicer-energy: the Energy tab (live power, temperatures, jobs, calibration) and the
 * estimate in each file's details in the file list. */
$(function () {
    function SlicerEnergyViewModel(parameters) {
        var self = this;
        self.files = parameters[0];
        self.temperature = parameters[1];
        self.loginState = parameters[2];

        self.jobs = ko.observableArray([]);
        self.estimates = ko.observableArray([]);
        self.live = ko.observable({});
        self.powerW = ko.observable(null);
        self.calibration = ko.observable("");
        self.calibrating = ko.observable(false);
        self.csvUrl = BASEURL + "api/plugin/slicer_energy?format=csv";

        // small prints: Wh, so that a 20 Wh job does not read as 0.02
        self.kwh = function (v) {
            if (v === null || v === undefined) return "–";
            return v >= 1 ? v.toFixed(3) + " kWh" : (1000 * v).toFixed(2) + " Wh";
        };
        self.money = function (v, currency) {
            if (v === null || v === undefined) return "–";
            return v.toFixed(v < 1 ? 4 : 2) + " " + (currency || "");
        };
        self.grams = function (v) {
            return v === null || v === undefined ? "–" : v.toFixed(1) + " g";
        };
        self.duration = function (job) {
            return job.ended_unix ? formatDuration(job.ended_unix - job.started_unix) : "…";
        };
        self.powerText = ko.pureComputed(function () {
            var p = self.powerW();
            return p === null || p === undefined ? "–" : p.toFixed(1) + " W";
        });
        function heater(entry) {
            if (!entry) return "–";
            var a = entry.actual(), t = entry.target();
            return a === undefined || a === null ? "–" : a.toFixed(1) + " °C / " + (t || 0) + " °C";
        }
        self.hotendText = ko.pureComputed(function () {
            return heater(self.temperature.tools()[0]);
        });
        self.bedText = ko.pureComputed(function () {
            return heater(self.temperature.bedTemp);
        });
        self.meterText = ko.pureComputed(function () {
            var l = self.live();
            return (l.meter || "none") + (l.meter_error ? " (" + l.meter_error + ")" : "");
        });

        self.refresh = function () {
            if (!self.loginState.isUser()) return;
            OctoPrint.simpleApiGet("slicer_energy").done(function (r) {
                self.jobs(r.jobs.slice().reverse());
                self.estimates(r.estimates);
                self.live(r.live);
                if (r.live.power_w !== null) self.powerW(r.live.power_w);
            });
        };
        self.calibrate = function () {
            self.calibrating(true);
            OctoPrint.simpleApiCommand("slicer_energy", "calibrate", {})
                .done(function (r) {
                    self.calibration(JSON.stringify(r, null, 2));
                })
                .fail(function (xhr) {
                    self.calibration((xhr.responseJSON && xhr.responseJSON.error) || xhr.statusText);
                })
                .always(function () {
                    self.calibrating(false);
                    self.refresh();
                });
        };

        self.onStartupComplete = self.refresh;
        self.onUserLoggedIn = self.refresh;
        self.onTabChange = function (next) {
            if (next === "#tab_plugin_slicer_energy") self.refresh();
        };
        self.onDataUpdaterPluginMessage = function (plugin, data) {
            if (plugin !== "slicer_energy") return;
            if (data.type === "power") {
                self.powerW(data.power_w);
            } else {
                self.refresh();
                if (data.type === "estimate") self.files.requestData();
            }
        };

        // the file list's details: OctoPrint puts the file's metadata (ours under
        // "slicer_energy") into each entry
        var additional = self.files.getAdditionalData;
        self.files.getAdditionalData = function (data) {
            var out = additional(data);
            var e = data.slicer_energy;
            if (e) {
                out += "Energy (slicer-energy): " + self.kwh(e.energy_kwh) + ", " +
                    self.money(e.cost, e.currency) + ", " + formatDuration(e.time_s) + "<br>";
            }
            return out;
        };
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: SlicerEnergyViewModel,
        dependencies: ["filesViewModel", "temperatureViewModel", "loginStateViewModel"],
        elements: ["#slicer_energy_tab"]
    });
});
