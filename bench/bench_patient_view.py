"""``oncology-genomics`` on patient-view with a 50-variant prefetch at 32 concurrent clients.

Same harness as ``bench_cds_hooks`` (one uvicorn server, signed ES384 JWT per call, a bare
``POST /bench/bare`` endpoint on the same server receiving the same 50-variant body as the
same-run baseline). The hook call includes JWT verification, the jti replay insert, FHIR intake
of 50 Variant Observations, interpretation, storing the analysis and its report Bundle, audit
records and card storage. Issue #4 targets: p95 <= 50 ms and >= 50 % of the bare throughput.
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

    from cds_service.app import create_app
    from cds_service.settings import Settings

    bare = APIRouter()

    @bare.post("/bench/bare")
    def bare_endpoint(body: dict[str, Any]) -> dict[str, Any]:
        return {"cards": []}

    return create_app(Settings(), extra_routers=(bare,))


@cache
def _prefetch() -> dict[str, Any]:
    from integrations.readers import read_variants
    from tests.cds_service.cdshooks.test_genomic_services import (
        COLORECTAL,
        NC_GRCH38,
        searchset,
        variant_observation,
    )

    variants = [
        v
        for v in read_variants(VCF).alterations
        if getattr(v, "position", None) is not None and v.position.chrom in NC_GRCH38  # type: ignore[union-attr]
    ]
    braf = [v for v in variants if v.position.pos == 140753336]  # type: ignore[union-attr]
    chosen = braf + [v for v in variants if v not in braf][:49]
    observations = [variant_observation(v, i, "Patient/p-bench") for i, v in enumerate(chosen)]  # type: ignore[arg-type]
    return {
        "patient": {"resourceType": "Patient", "id": "p-bench"},
        "conditions": searchset([COLORECTAL]),
        "variants": searchset(observations),
        "panels": None,
        "genotypes": searchset([]),
        "medications": searchset([]),
    }


def _body() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": "p-bench"},
        "prefetch": _prefetch(),
    }


def main() -> None:
    server_url = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    options: dict[str, Any] = {
        "app_factory": "bench.bench_patient_view:build_app",
        "service": SERVICE,
        "body": _body,
    }
    with tempfile.TemporaryDirectory() as tmp:
        if server_url:
            from cds_service.db.testing import temporary_postgres_database

            with temporary_postgres_database(server_url, prefix="oncocds_bench") as url:
                harness._run(url, "postgresql", Path(tmp), **options)
        harness._run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", Path(tmp), **options)
