"""``oncology-genomics`` on patient-view with a 50-variant prefetch at 32 concurrent clients.

Same harness as ``bench_cds_hooks`` (one uvicorn server, signed ES384 JWT per call, a bare
``POST /bench/bare`` endpoint on the same server receiving the same 50-variant body as the
same-run baseline). The hook call includes JWT verification, the jti replay insert, FHIR intake
of 50 Variant Observations, interpretation, the report card (with the whole DiagnosticReport in
its "save to chart" action), audit records and card storage. Two scenarios, each against the
same bare figure:

- ``same patient``: the chart opened again with the same results (the usual case through a
  clinic day): the analysis stored by the first call is linked again, nothing is stored anew;
- ``new patient``: every call a different patient (its Observations name it), so nothing is
  reused or cached: intake, interpretation, the report Bundle and the analysis row every time.

Issue #4 targets: p95 <= 50 ms and >= 50 % of the bare throughput.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from bench import bench_cds_hooks as harness

SERVICE = "oncology-genomics"
VCF = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "data"
    / "vcf"
    / "pcgr_T001-COAD.grch38.vcf.gz"
)


def build_app() -> Any:
    """uvicorn factory: the real genomic services plus the bare baseline endpoint."""
    from fastapi import APIRouter

    from cds_service.cli.serve_cmd import serving_app
    from cds_service.settings import Settings

    bare = APIRouter()

    @bare.post("/bench/bare")
    def bare_endpoint(body: dict[str, Any]) -> dict[str, Any]:
        return {"cards": []}

    return serving_app(Settings(), extra_routers=(bare,))  # as `oncocds serve` runs it


@cache
def _variants() -> list[Any]:
    from integrations.readers import read_variants
    from tests.cds_service.cdshooks.test_genomic_services import NC_GRCH38

    variants = [
        v
        for v in read_variants(VCF).alterations
        if getattr(v, "position", None) is not None and v.position.chrom in NC_GRCH38  # type: ignore[union-attr]
    ]
    braf = [v for v in variants if v.position.pos == 140753336]  # type: ignore[union-attr]
    return braf + [v for v in variants if v not in braf][:49]


@cache
def _prefetch(patient: str = "p-bench") -> dict[str, Any]:
    from tests.cds_service.cdshooks.test_genomic_services import (
        COLORECTAL,
        searchset,
        variant_observation,
    )

    observations = [
        variant_observation(v, i, f"Patient/{patient}") for i, v in enumerate(_variants())
    ]
    return {
        "patient": {"resourceType": "Patient", "id": patient},
        "conditions": searchset([COLORECTAL]),
        "variants": searchset(observations),
        "panels": None,
        "genotypes": searchset([]),
        "medications": searchset([]),
    }


def _body(patient: str = "p-bench") -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": patient},
        "prefetch": _prefetch(patient),
    }


def _new_patient_body() -> dict[str, Any]:
    patient = f"p-{uuid.uuid4().hex[:12]}"
    body = _body(patient)
    _prefetch.cache_clear()  # one body per patient; keep memory flat
    return body


def main() -> None:
    server_url = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    options: dict[str, Any] = {
        "app_factory": "bench.bench_patient_view:build_app",
        "service": SERVICE,
        "body": _body,
        "scenarios": (("same patient", _body), ("new patient", _new_patient_body)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if server_url:
            from cds_service.db.testing import temporary_postgres_database

            with temporary_postgres_database(server_url, prefix="oncocds_bench") as url:
                harness._run(url, "postgresql", Path(tmp), **options)
        harness._run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", Path(tmp), **options)
