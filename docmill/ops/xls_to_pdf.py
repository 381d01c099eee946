"""`/xls/convert/to/pdf`: a spreadsheet (XLS, XLSX, ODS, or any document `/pdf/convert/from/doc`
takes) to PDF. Same conversion as `doc_to_pdf`, under PDF.co's spreadsheet path."""

from __future__ import annotations

from docmill.operation import Operation, ResultShape, register
from docmill.ops.doc_to_pdf import Params, convert_doc_to_pdf

register(
    Operation(
        name="xls_to_pdf",
        paths=("/xls/convert/to/pdf",),
        params=Params,
        run=convert_doc_to_pdf,
        result=ResultShape.ONE_FILE,
        extension="pdf",
        summary="Convert a spreadsheet (XLS, XLSX, ODS...) to PDF.",
        engines=("libreoffice",),
    )
)
