"""FDM process model from geometry: features on the LayerGrid, time, energy (issue 4)."""
