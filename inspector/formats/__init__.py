"""Format modules, one per on-disk format; `inspector.registry` lists them."""
