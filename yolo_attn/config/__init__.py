"""Model configs: finding YAML files, parsing rows safely, YAML surgery, weight transfer, summaries."""
