"""Compute allocation by estimated difficulty (the `auto` and `route` strategies); see DESIGN.md section 4.

Layer: above the strategies. Imports `reasoner` and `strategies` only (DESIGN.md section 1).
`auto` is found through its entry point, which imports this package first; importing `route`
here registers it (`register_strategy`) by the same path.
"""

from controllers import route as route
