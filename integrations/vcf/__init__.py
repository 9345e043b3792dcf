"""VCF 4.x intake (plain or bgzipped), streaming, with per-record problems at ``file:line``."""

from integrations.vcf.reader import VcfReader, iter_vcf, read_vcf

__all__ = ["VcfReader", "iter_vcf", "read_vcf"]
