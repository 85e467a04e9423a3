"""medical: DICOM/NIfTI volumes through the srstream engine, slice by slice."""
