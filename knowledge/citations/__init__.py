"""Citation checking: ``[n]`` markers parsed, each cited sentence checked against its source, links
that no cited source contains removed."""
