"""Write-back of report Bundles to the EHR's FHIR server (SMART Backend Services)."""
