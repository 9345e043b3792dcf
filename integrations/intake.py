"""What every intake (FHIR Observations, VCF, HL7 v2, text lists) returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from inference.genomics.model import Alteration, Genotype, Origin, Variant
from integrations.errors import RecordProblem


@dataclass(slots=True)
class IntakeResult:
    """Alterations and genotypes read, plus one problem per record that could not be read.

    Lenient mode: bad records become problems and the rest is kept. Strict mode: the reader
    raises :class:`integrations.errors.IntakeError` carrying all problems instead.
    """

    alterations: list[Alteration] = field(default_factory=list)
    genotypes: list[Genotype] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    records_read: int = 0


def with_default_origin(result: IntakeResult, origin: Origin | None) -> IntakeResult:
    """Give ``origin`` to every variant whose input did not state one (``--origin germline``).

    A stated origin (a line's ``somatic``, a CSV origin column, FHIR 48002-0, HL7 48002-0) always
    wins. Biomarkers keep theirs: fusions and copy-number changes default to somatic, and MSI,
    TMB and HRD are properties of a tumour.
    """
    if origin is None or origin is Origin.UNKNOWN:
        return result
    result.alterations = [
        replace(a, origin=origin) if isinstance(a, Variant) and a.origin is Origin.UNKNOWN else a
        for a in result.alterations
    ]
    return result
