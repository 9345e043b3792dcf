"""Test-only CDS services, one module each, registered through ``create_app(cds_services=...)``.

They exercise the protocol layer (each hook shape, prefetch, suggestions, links, system actions);
they make no clinical claim and are never part of production discovery.
"""

from __future__ import annotations

from tests.cds_service.cdshooks.services import (
    encounter_discharge_demo,
    order_select_demo,
    order_sign_demo,
    patient_view_demo,
    prefetch_probe,
)

ALL = (
    patient_view_demo,
    order_select_demo,
    order_sign_demo,
    encounter_discharge_demo,
    prefetch_probe,
)
