"""The report: tables assembled by the evaluation kinds, plots, report.md and publishing."""
