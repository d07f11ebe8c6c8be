"""The prep stage: data file -> prepared train/test in the run directory, plus the data report.

load (readers, formats) -> templates -> tokenize -> split -> checks/dedup -> pack -> store,
driven by build and exposed by prepare (prepare, ensure_prepared, load_prepared). collate pads
prepared rows into training batches; show and report render what prep found.
"""
