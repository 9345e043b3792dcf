"""HL7 v2 over MLLP: framing, header reading and charsets, ACKs, and ORU^R01 genetic results.

Public API:

- :mod:`integrations.hl7v2.mllp`: :class:`FrameDecoder`, :func:`frame`.
- :mod:`integrations.hl7v2.message`: :func:`read_header`, :func:`decode_message`,
  :class:`CharsetPolicy`.
- :mod:`integrations.hl7v2.ack`: :func:`build_ack`, ACK codes and mode rules.
- :mod:`integrations.hl7v2.oru`: :func:`read_genetic_results`.
- :mod:`integrations.hl7v2.errors`: the error tree.
"""
