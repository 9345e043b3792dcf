"""What every intake (FHIR Observations, VCF, HL7 v2, text lists) returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from inference.genomics.model import Alteration, Genotype
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
