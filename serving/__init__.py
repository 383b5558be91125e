"""The HTTP service: FastAPI app factory, routes, model holder, rules admin."""
