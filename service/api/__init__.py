"""The REST API (FastAPI): routers, schemas, dependencies and the app factory."""
