"""Pure reading of results: the step protocol, transcript notes, what the modules print and its
format, the splat scan, the result model, the verdict, text and JSON output, figures."""
