"""How results are shown: Markdown and CSV text (format.py) and matplotlib figures (plots.py)
that the kinds of evaluation, the report and publishing all draw with. It imports the
contract and nothing of the pipeline, so a kind can use it without reaching up."""
