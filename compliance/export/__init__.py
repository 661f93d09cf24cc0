"""Export layer: tables to XLSX, CSV and PDF (with charts), a SHA-256 manifest and a deterministic zip.

Generic: the evidence pack and the access-review export compose these; nothing here knows CC-16000 items.
"""

from compliance.export.charts import (
    ASHRAE_RH_BANDS,
    ASHRAE_TEMP_BANDS,
    DayStats,
    band_chart,
    daily_stats,
    timeline_chart,
)
from compliance.export.csvfile import read_csv, write_csv
from compliance.export.manifest import MANIFEST_NAME, verify_manifest, write_manifest
from compliance.export.pdf import FontMissingError, PdfReport, cjk_font
from compliance.export.tables import STATUSES, Column, Table, cell_text
from compliance.export.xlsx import write_workbook
from compliance.export.zippack import ZipVerifyError, write_zip

__all__ = [
    "ASHRAE_RH_BANDS",
    "ASHRAE_TEMP_BANDS",
    "MANIFEST_NAME",
    "STATUSES",
    "Column",
    "DayStats",
    "FontMissingError",
    "PdfReport",
    "Table",
    "ZipVerifyError",
    "band_chart",
    "cell_text",
    "cjk_font",
    "daily_stats",
    "read_csv",
    "timeline_chart",
    "verify_manifest",
    "write_csv",
    "write_manifest",
    "write_workbook",
    "write_zip",
]
