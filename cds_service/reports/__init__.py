"""The clinician report page: server-rendered HTML behind an expiring signed link."""
