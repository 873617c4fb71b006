"""Compute allocation by estimated difficulty (the `auto` and `route` strategies); see DESIGN.md section 4.

Layer: above the strategies. Imports `reasoner` and `strategies` only (DESIGN.md section 1).
"""
