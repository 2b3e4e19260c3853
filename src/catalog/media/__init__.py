"""Product images: upload, validation, renditions and their storage (local disk or S3)."""
