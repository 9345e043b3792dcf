"""Client authentication for the CDS Hooks endpoints (CDS Hooks 2.0 §Trusting CDS Clients).

``clients`` loads the trusted-client file, ``jwks`` caches the clients' public keys, ``replay``
keeps seen ``jti`` values in the database, ``jwt`` verifies a bearer token against all of them and
``signing`` makes tokens (development client, tests, benchmarks).
"""
