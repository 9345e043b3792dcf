"""``oncocds analyze FILE``: read variants, interpret them, print text, JSON or a FHIR Bundle.

Input is a VCF (plain or bgzipped), FHIR JSON (Bundle or Observations), a CSV/TSV table or a
pasted text list; the format is detected or given with ``--input-format``. Problems with single
records are listed (``file:line: reason``) and the rest is interpreted, unless ``--strict``.
Nothing is written to the database: the command prints and exits (0 ok, 2 on an input error).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from cds_service.errors import BadRequestError
from inference.errors import InferenceError
from inference.genomics import (
    Interpretation,
    PatientContext,
    interpret,
    resolve_tumour_type,
)
from inference.genomics.model import Alteration, Origin, Variant
from inference.genomics.serialize import interpretation_to_json
from integrations.errors import IntakeError, RecordProblem
from integrations.intake import IntakeResult
from integrations.readers import FORMATS, read_variants
from integrations.vcf import iter_vcf

_PROGRESS_EVERY = 10_000
_MAX_PROBLEMS_SHOWN = 20


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "analyze", help="interpret a VCF, FHIR JSON, CSV/TSV or text list of variants"
    )
    parser.add_argument("file", type=Path, help="input file")
    parser.add_argument(
        "--tumor-type",
        dest="tumour_type",
        help="OncoTree code (COAD), system|code (SNOMED CT, ICD-10-CM) or a name",
    )
    parser.add_argument("--build", choices=["GRCh37", "GRCh38"], help="genome build if unstated")
    parser.add_argument("--format", dest="output", choices=["text", "json", "fhir"], default="text")
    parser.add_argument("--input-format", choices=FORMATS, help="skip format detection")
    parser.add_argument(
        "--origin",
        choices=[o.value for o in Origin],
        help="origin of every variant whose input states none (germline for a hereditary panel; "
        "a tumour-normal VCF is somatic); a line's own germline/somatic wins",
    )
    parser.add_argument(
        "--context",
        default="",
        help="comma-separated clinical context that gates approvals, e.g. HR+,HER2-",
    )
    parser.add_argument(
        "--patient", default="Patient/unknown", help="FHIR subject reference for --format fhir"
    )
    parser.add_argument("--strict", action="store_true", help="refuse input with any bad record")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add a plain-language explanation (the local LLM per ONCOCDS_LLM__*, checked "
        "against the findings, else a template; labelled); text and json output",
    )
    parser.add_argument(
        "--progress", action="store_true", help="show progress on stderr (default: on a TTY)"
    )
    parser.set_defaults(func=run)


def _read(args: argparse.Namespace) -> IntakeResult:
    origin = Origin(args.origin) if args.origin else None
    name = args.file.name
    is_vcf = args.input_format == "vcf" or (
        args.input_format is None and ".vcf" in args.file.name.lower()
    )
    show_progress = args.progress or sys.stderr.isatty()
    if not is_vcf or args.strict or not show_progress:
        return read_variants(
            args.file,
            fmt=args.input_format,
            build=args.build,
            strict=args.strict,
            origin=origin,
            name=name,
        )
    # Streamed with a progress line: large VCFs take a while and users want to see movement.
    result = IntakeResult()
    for item in iter_vcf(args.file, build=args.build, origin=origin, name=name):
        if isinstance(item, RecordProblem):
            result.problems.append(item)
        else:
            result.alterations.append(item)
        result.records_read += 1
        if result.records_read % _PROGRESS_EVERY == 0:
            sys.stderr.write(f"\rread {result.records_read:,} records")
            sys.stderr.flush()
    sys.stderr.write(f"\rread {result.records_read:,} records\n")
    if not result.alterations and result.problems:
        raise IntakeError(f"{name}: no readable record", result.problems)
    return result


def _context(args: argparse.Namespace) -> PatientContext:
    tumour = resolve_tumour_type(args.tumour_type) if args.tumour_type else None
    flags = frozenset(part.strip() for part in args.context.split(",") if part.strip())
    return PatientContext(tumour_type=tumour, clinical_context=flags)


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise BadRequestError(f"{args.file}: no such file")
    try:
        context = _context(args)
        intake = _read(args)
        interpretation = interpret(intake.alterations, context, genotypes=intake.genotypes)
    except IntakeError as exc:
        detail = f" ({exc.problems[0]})" if exc.problems else ""
        raise BadRequestError(f"{exc.message}{detail}") from exc
    except InferenceError as exc:
        raise BadRequestError(str(exc)) from exc
    if args.explain and args.output == "fhir":
        raise BadRequestError("--explain works with --format text or json")
    explanation = _explanation(interpretation) if args.explain else None
    out = sys.stdout
    if args.output == "json":
        document = interpretation_to_json(interpretation)
        if explanation is not None:
            document["explanation"] = explanation
        document["problems"] = [
            {"location": p.location, "reason": p.reason} for p in intake.problems
        ]
        json.dump(document, out, indent=2, sort_keys=True)
        out.write("\n")
    elif args.output == "fhir":
        # Only this output needs the FHIR models and the database's clock helper (SQLAlchemy):
        # imported here, they stay out of the start-up of every other use of the command.
        from cds_service import __version__
        from cds_service.db.base import utcnow
        from inference.genomics import load_knowledge_base
        from integrations.fhir.genomics_report import ReportContext, build_genomic_report_bundle

        bundle = build_genomic_report_bundle(
            interpretation,
            ReportContext(
                patient_reference=args.patient,
                oncocds_version=__version__,
                kb_version=load_knowledge_base().version,
                issued=utcnow(),
            ),
        )
        json.dump(bundle, out, indent=2)
        out.write("\n")
    else:
        _print_text(out, interpretation, intake)
        if explanation is not None:
            from cds_service.cli.explain_cmd import render_text

            out.write("\nExplanation\n" + render_text(explanation["text"], explanation["label"]))
    return 0


def _explanation(interpretation: Interpretation) -> dict[str, Any]:
    """The explanation of this interpretation, generated now (nothing is stored)."""
    from cds_service.explanations.service import explainer_for, make_label
    from cds_service.settings import Settings
    from inference.llm import genomic_input

    with explainer_for(Settings().llm) as explainer:
        outcome = explainer.explain(genomic_input(interpretation))
    digest = outcome.digest or explainer.digest
    return {
        "label": make_label(outcome.source, explainer.model, digest, outcome.fallback_reason),
        "source": outcome.source,
        "model": explainer.model,
        "modelDigest": digest,
        "text": outcome.content,
    }


def _alteration_labels(interpretation: Interpretation) -> dict[str, Alteration]:
    return {alteration.id: alteration for alteration in interpretation.alterations}


def _print_text(out: TextIO, interpretation: Interpretation, intake: IntakeResult) -> None:
    by_id = _alteration_labels(interpretation)
    tumour = interpretation.context.tumour_type
    out.write("OncoCDS interpretation (decision support, not a diagnosis)\n")
    out.write(f"knowledge base: {interpretation.kb_version}\n")
    out.write(f"tumour type:    {f'{tumour.name} ({tumour.code})' if tumour else 'not given'}\n")
    out.write(
        f"input:          {intake.records_read:,} records, {len(interpretation.alterations):,} "
        f"alterations, {len(intake.problems)} problems\n\n"
    )
    if interpretation.therapeutic:
        out.write("Therapeutic findings\n")
        for finding in interpretation.therapeutic:
            alteration = by_id.get(finding.alteration_id)
            label = alteration.label if alteration else finding.alteration_id
            vaf = ""
            if isinstance(alteration, Variant) and alteration.allele_frequency is not None:
                vaf = f" VAF {alteration.allele_frequency:.2f}"
            drugs = " + ".join(d.name for d in finding.drugs)
            sources = ", ".join(f"{e.source} {e.id}" for e in finding.evidence[:4])
            approved = (
                " [FDA-approved for this tumour type]" if finding.fda_approved_for_tumour else ""
            )
            out.write(
                f"  {finding.tier.label:<18} {label}{vaf}: {drugs} ({finding.response.value}; "
                f"{finding.disease}){approved}\n      evidence: {sources}\n"
            )
        out.write("\n")
    for finding_h in interpretation.hereditary:
        out.write(
            f"Hereditary risk: {finding_h.gene.symbol} ({finding_h.classification}) - "
            f"{finding_h.condition}. {finding_h.recommendation} "
            f"[{', '.join(f'{e.source} {e.id}' for e in finding_h.evidence)}]\n"
        )
    for finding_p in interpretation.pharmacogenomic:
        out.write(
            f"Pharmacogenomics: {finding_p.gene.symbol} {finding_p.diplotype} "
            f"{finding_p.phenotype}: {finding_p.recommendation} "
            f"[{', '.join(f'{e.source} {e.id}' for e in finding_p.evidence)}]\n"
        )
    out.write(
        f"\nnot in knowledge base: {len(interpretation.unknown):,} alterations "
        "(reported as unknown, not interpreted)\n"
    )
    for warning in interpretation.warnings:
        out.write(f"warning: {warning}\n")
    for problem in intake.problems[:_MAX_PROBLEMS_SHOWN]:
        out.write(f"problem: {problem}\n")
    if len(intake.problems) > _MAX_PROBLEMS_SHOWN:
        out.write(f"... and {len(intake.problems) - _MAX_PROBLEMS_SHOWN} more problems\n")
