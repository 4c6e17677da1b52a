"""Writers, one module per target format; `converters.registry` lists them."""
