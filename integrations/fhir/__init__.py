"""FHIR R4 (via fhir.resources' R4B models): resources, client, Genomics Reporting mapping."""
