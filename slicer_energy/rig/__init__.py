"""Calibration rig: talk to a Marlin/RepRap printer and a power meter, log both, simulate both.

- :mod:`.protocol`: pure parsers and formatters of the Marlin serial protocol (no I/O).
- :mod:`.marlin`: the host (handshake, line numbers, resends, streaming) over pyserial.
- :mod:`.meters`: power meter drivers (PZEM-004T, Eastron SDM, Tasmota, Shelly).
- :mod:`.logger`: the append-only session folder.
- :mod:`.sim`: a virtual Marlin printer on a pseudo-terminal (:mod:`.simphysics` its hidden
  physics, :mod:`.simmeter` the virtual meter, :mod:`.simpty` the pty plumbing).
- :mod:`.session`: wires a host, a meter and a logger into one recorded session;
  :mod:`.demo` does the same with the virtual printer and meter.
"""
