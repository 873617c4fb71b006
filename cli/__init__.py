"""The `reasoner` command line: `solve`, `eval`, `report`, `calibrate`, `models`, `serve`.

Layer: an entry point, on top beside `server/` (whose `serve` it runs). It may import the
public API of every layer below and the strategy registry; nothing below imports it.
"""
