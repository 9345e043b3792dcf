"""HL7 v2 ingestion: the MLLP listener, the inbox, the processing worker, CLI and API views.

- :mod:`.listener`: ``oncocds mllp`` (asyncio streams); stores each message, commits, then ACKs.
- :mod:`.repository`: the ``hl7_inbox_messages`` table (store, claim, complete, list, replay).
- :mod:`.worker`: claims stored messages and runs a :class:`.processing.ResultProcessor`.
- :mod:`.processing`: the processor protocol and the default genetic-results processor.
- :mod:`.endpoints`: ``/api/v1/hl7/messages`` for integration and compliance staff.
"""
