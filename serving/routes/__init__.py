"""One module per resource; ``serving.app`` includes their routers."""
