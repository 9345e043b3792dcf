"""HTTP layer: middleware, error rendering and the routers every feature contributes."""
