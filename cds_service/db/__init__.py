"""Database: declarative base, engine construction, request-scoped sessions, migrations."""
