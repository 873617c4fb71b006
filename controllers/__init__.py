"""Compute allocation by estimated difficulty (the `auto` strategy); see DESIGN.md section 4."""
