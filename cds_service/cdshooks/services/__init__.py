"""Clinical CDS services shipped with OncoCDS, one module each (see ``cdshooks.registry``).

Test-only services live in the tests and are registered through
``create_app(settings, cds_services=...)``, never here.
"""

from __future__ import annotations

from cds_service.cdshooks.registry import ServiceSpec
from cds_service.cdshooks.services import oncology_genomics, targeted_therapy_check

BUILTIN_SERVICES: tuple[ServiceSpec, ...] = (
    oncology_genomics,
    *targeted_therapy_check.definitions(),
)
