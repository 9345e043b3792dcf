"""Alteration notation as labs, EHRs and clinicians write it: one line, the items it names.

Used by text lists, the ``alteration`` column of CSV/TSV tables and ``oncocds analyze``. Gene
symbols are case-insensitive. Forms understood (:func:`read_line`)::

    TP53:c.818G>A        TP53 c.818G>A         NM_000546.6(TP53):c.818G>A
    BRAF V600E           EGFR p.L858R          KRAS p.(Gly12Asp)     BRAF c.1799T>A (p.V600E)
    EGFR E746_A750del    EGFR A767_V769dup     EGFR D770_N771insSVD  EGFR L747_P753delinsS
    NRAS Q61*            BRCA1 R1699fs         BRCA2 W288fs*12       (any HGVS protein form,
                                                                     1- or 3-letter, with or
                                                                     without "p.")
    EGFR exon 19 deletion    EGFR exon 20 insertion    MET exon 14 skipping    KIT exon 11 mutation
    FLT3-ITD   FLT3 internal tandem duplication   FLT3-TKD   NPM1 mutation
    EML4::ALK   EML4-ALK   EML4-ALK fusion   ALK fusion   ALK rearrangement
    BCR-ABL1 T315I       (the fusion, and ABL1 T315I)
    ERBB2 amplification  ERBB2 amp             CDKN2A deletion       CDKN2A loss
    MSI-H   dMMR   MSS (no finding)   TMB 12   TMB: 12.5 mut/Mb
    HRD positive   HRD positive (GIS 48)   HRD negative (no finding)
    BRAF 7:140753336 A>T GRCh38            chr7-140753336-A-T (with build=)
    DPYD *2A/*2A         UGT1A1 *1/*28         (pharmacogene diplotypes)

Qualifiers anywhere on the line: ``germline``/``somatic`` (origin), ``het``/``hom``/``hemi``
(zygosity), ``VAF 0.31``/``AF=31%`` (allele fraction), ``DP 54``/``depth 54`` (reads),
``pathogenic``/``likely pathogenic``/``VUS``/… (the significance the report states).

Fusions: ``A-B``/``A::B`` is 5' partner ``A``, 3' partner ``B`` (HGVS/HGNC fusion notation), kept
as ``Biomarker(gene=B, fusion_partner=A)``. A symbol with a hyphen and a short, numeric or
protein-change right part (``NKX2-1``, ``HLA-A``, ``KRAS-G12C``) is not a fusion.

Anything else raises :class:`LineError` with the reason (never a guess): a protein change without
a gene, ``TMB high`` without a number, ``HRD`` without a status, ``exon 2 deletion`` (a
copy-number event, not an exon class).
"""

from __future__ import annotations

from integrations.notation.errors import LineError
from integrations.notation.line import C_HGVS, MAX_LINE_CHARS, Item, read_line
from integrations.notation.phrases import AMP_WORDS, DEL_WORDS, FUSION_WORDS
from integrations.notation.qualifiers import SIGNIFICANCE_WORDS, fraction

__all__ = [
    "AMP_WORDS",
    "C_HGVS",
    "DEL_WORDS",
    "FUSION_WORDS",
    "MAX_LINE_CHARS",
    "SIGNIFICANCE_WORDS",
    "Item",
    "LineError",
    "fraction",
    "read_line",
]
