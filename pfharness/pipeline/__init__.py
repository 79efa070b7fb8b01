"""One pipeline for every client (`run`, `study`, the benchmarks, the transcript regenerator):
a target spec (targets.py) says where steps run and what that place needs; prepare.py resolves the
kernel and builds the modules once; core.py runs a sequence of steps on the target and yields one
result each; store.py keeps each result as a run directory; events.py carries what a run reports."""
