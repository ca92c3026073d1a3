"""Calibration rig: talk to a Marlin/RepRap printer and a power meter, log both, simulate both.

- :mod:`.protocol`: pure parsers and formatters of the Marlin serial protocol (no I/O).
- :mod:`.marlin`: the host (handshake, line numbers, resends, streaming) over pyserial.
- :mod:`.meters`: power meter drivers (PZEM-004T, Eastron SDM, Tasmota, Shelly).
- :mod:`.logger`: the append-only session folder.
- :mod:`.session`: wires a host, a meter and a logger into one recorded session.
- :mod:`.sim`: the simulator beside that real transport: a virtual Marlin printer on a
  pseudo-terminal (:mod:`.sim.printer`; :mod:`.sim.physics` its hidden physics,
  :mod:`.sim.meter` the virtual meter, :mod:`.sim.pty` the pty plumbing) and :mod:`.sim.demo`,
  a whole session recorded against them.
"""
