"""Clinical CDS services shipped with OncoCDS, one module each (see ``cdshooks.registry``).

The genomic services are added by their own change; test-only services live in the tests and are
registered through ``create_app(settings, cds_services=...)``, never here.
"""

from __future__ import annotations

from cds_service.cdshooks.registry import ServiceSpec

BUILTIN_SERVICES: tuple[ServiceSpec, ...] = ()
