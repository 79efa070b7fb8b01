"""Pure reading of results: the step protocol, transcript notes, module output and its format, splats, the result model, verdict and text."""
