"""slicer-energy: print time and electrical energy of 3D prints, from geometry or G-code."""

__version__ = "0.1.0"
