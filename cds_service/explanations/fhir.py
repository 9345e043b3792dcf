"""An explanation as FHIR R4, in the shapes of AI Transparency on FHIR 1.0.0 (STU1).

http://hl7.org/fhir/uv/aitransparency/ (profiles AI-Provenance, AI-InputPrompt, AI-Device; code
systems AIinputsCS and AIdeviceTypeCS). A collection Bundle of:

- the explanation, a ``DocumentReference`` (text/markdown) about the analysis's report, labelled
  ``meta.security`` AIAST ("Artificial Intelligence asserted") when a model wrote it;
- the **input prompt**, a ``DocumentReference`` in the ``AI-InputPrompt`` profile (type
  ``AIinputsCS#AIInputPrompt``): the versioned prompt and the findings document the model was
  given (no patient name, identifier or date is in either);
- the model, a ``Device`` in the ``AI-Device`` profile (type ``Artificial-Intelligence``, kind
  ``Large-Language-Models``), its name and pinned digest;
- a ``Provenance`` in the ``AI-Provenance`` profile: target the explanation, reason AIAST,
  agent the device (role Artificial-Intelligence), entity the prompt (role ``derivation``, as
  the profile's ``inputPrompt`` slice fixes it).

A template explanation (no model text used) gets the explanation only, without AIAST, device or
provenance: no AI asserted it. Validated with fhir.resources (R4B) through a Bundle.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any, Final

from cds_service.models.explanations import Explanation
from inference.llm import load_prompt
from inference.llm.findings import ExplanationInput
from integrations.fhir.imaging_report import (
    AI_DEVICE_PROFILE,
    AI_DEVICE_TYPE_CS,
    AI_IG,
    AI_KIND_URL,
    AI_PROVENANCE_PROFILE,
    AIAST,
    PROVENANCE_PARTICIPANT,
)
from integrations.fhir.resources import Bundle

Json = dict[str, Any]
AI_INPUT_PROMPT_PROFILE: Final = f"{AI_IG}/StructureDefinition/AI-InputPrompt"
AI_INPUTS_CS: Final = f"{AI_IG}/CodeSystem/AIinputsCS"
DIGEST_SYSTEM: Final = "urn:oncocds:llm-model-digest"
PROMPT_SYSTEM: Final = "urn:oncocds:llm-prompt-version"
_NAMESPACE: Final = uuid.UUID("6c1d1f0e-5a7b-5d8e-9c0f-2b3a4c5d6e7f")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _id(row: Explanation, role: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{row.id}/{role}"))


def explanation_markdown(row: Explanation, label: str) -> str:
    content = row.content or {}
    lines = [f"_{label}_", ""]
    if row.kind == "genomic":
        lines += ["## Clinician summary", str(content.get("clinician_summary", "")), ""]
        for paragraph in content.get("patient_paragraphs", ()):
            lines += [f"## For the patient ({paragraph['finding_id']})", paragraph["text"], ""]
    else:
        lines += ["## Findings", str(content.get("findings", "")), ""]
        lines += ["## Interpretation", str(content.get("interpretation", "")), ""]
        lines += ["## Next steps", *(f"- {s}" for s in content.get("next_steps", ())), ""]
    return "\n".join(lines)


def explanation_bundle(
    row: Explanation,
    source: ExplanationInput,
    *,
    label: str,
    report_reference: str,
    issued: datetime,
) -> Json:
    """The Bundle of ``row`` (ready), about ``report_reference`` (``DiagnosticReport/…``)."""
    issued_text = issued.isoformat().replace("+00:00", "Z")
    model_written = row.source == "model"
    explanation: Json = {
        "resourceType": "DocumentReference",
        "id": _id(row, "explanation"),
        "status": "current",
        "type": {"text": f"Plain-language explanation ({row.kind})"},
        "date": issued_text,
        "description": label,
        "context": {"related": [{"reference": report_reference}]},
        "content": [
            {
                "attachment": {
                    "contentType": "text/markdown",
                    "data": _b64(explanation_markdown(row, label)),
                    "title": label[:200],
                }
            }
        ],
    }
    resources: list[Json] = [explanation]
    if model_written:
        explanation["meta"] = {"security": [dict(AIAST)]}
        prompt = load_prompt(source.kind)
        prompt_text = f"{prompt.text}\n\n---\n\n{source.text}"
        prompt_doc: Json = {
            "resourceType": "DocumentReference",
            "id": _id(row, "prompt"),
            "meta": {"profile": [AI_INPUT_PROMPT_PROFILE]},
            "identifier": [{"system": PROMPT_SYSTEM, "value": row.prompt_version}],
            "status": "current",
            "type": {
                "coding": [
                    {"system": AI_INPUTS_CS, "code": "AIInputPrompt", "display": "AI Input Prompt"}
                ]
            },
            "description": f"Prompt {row.prompt_version} with the structured findings given",
            "content": [
                {"attachment": {"contentType": "text/markdown", "data": _b64(prompt_text)}}
            ],
        }
        device: Json = {
            "resourceType": "Device",
            "id": _id(row, "device"),
            "meta": {"profile": [AI_DEVICE_PROFILE]},
            "extension": [
                {
                    "url": AI_KIND_URL,
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": AI_DEVICE_TYPE_CS,
                                "code": "Large-Language-Models",
                                "display": "Large Language Models",
                            }
                        ]
                    },
                }
            ],
            "identifier": [{"system": DIGEST_SYSTEM, "value": row.model_digest or "unpinned"}],
            "deviceName": [{"name": row.model, "type": "model-name"}],
            "type": {
                "coding": [
                    {
                        "system": AI_DEVICE_TYPE_CS,
                        "code": "Artificial-Intelligence",
                        "display": "All kinds of Artificial Intelligence",
                    }
                ]
            },
            "version": [{"value": row.model_digest or "unpinned"}],
        }
        provenance: Json = {
            "resourceType": "Provenance",
            "id": _id(row, "provenance"),
            "meta": {"profile": [AI_PROVENANCE_PROFILE]},
            "target": [{"reference": f"DocumentReference/{explanation['id']}"}],
            "recorded": issued_text,
            "reason": [{"coding": [dict(AIAST)]}],
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": PROVENANCE_PARTICIPANT,
                                "code": "author",
                                "display": "Author",
                            }
                        ]
                    },
                    "role": [
                        {
                            "coding": [
                                {
                                    "system": AI_DEVICE_TYPE_CS,
                                    "code": "Artificial-Intelligence",
                                    "display": "All kinds of Artificial Intelligence",
                                }
                            ]
                        }
                    ],
                    "who": {"reference": f"Device/{device['id']}"},
                }
            ],
            "entity": [
                {
                    "role": "derivation",
                    "what": {"reference": f"DocumentReference/{prompt_doc['id']}"},
                }
            ],
        }
        resources += [prompt_doc, device, provenance]
    bundle: Json = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
    validated: Json = Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)
    return validated
