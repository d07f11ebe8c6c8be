"""Using a model: interactive chat (chat.py), batch generation over a file (generate_file.py),
and export of a run as a standalone Hugging Face folder (export.py)."""
