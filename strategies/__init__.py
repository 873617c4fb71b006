"""Reasoning strategies, one module per idea.

Importing this package imports every module in it; each registers its strategies with
`reasoner.register_strategy`, so a new strategy module needs no list to be edited.

Layer: above the core. A strategy imports `reasoner` only (DESIGN.md section 1).
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
