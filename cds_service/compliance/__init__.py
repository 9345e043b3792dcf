"""The audit trail for compliance staff: search, export, verification API and review console.

Compliance users authenticate with bearer tokens from the site's OpenID Connect provider
(:mod:`cds_service.compliance.auth`); every request, granted or refused, is itself audited.
"""
