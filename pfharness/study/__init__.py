"""`pfharness study`: trace several kinds of workload with B and C in one VM boot, compute figures
from the records, and write report.txt with the plots.

workloads.py says what is traced, run.py traces it (a client of the pipeline), model.py is what a
study holds; facts.py computes what each run's records prove, data.py makes figures.json of them,
findings.py and sentences.py write the findings from figures.json alone (cite.py formats each number),
firstpage.py is report.txt's first screen, reruns.py its appendix of C's runs, pictures.py draws a
process tree per program, report.py writes report.txt and reads a finished study back."""

from .model import Study, StudyRun
from .report import figures_table, losses, process_lines, render_report, reread_study, write_outputs
from .run import run_study
from .workloads import Workload, mods_of, workloads

__all__ = [
    "Study",
    "StudyRun",
    "Workload",
    "figures_table",
    "losses",
    "mods_of",
    "process_lines",
    "render_report",
    "reread_study",
    "run_study",
    "workloads",
    "write_outputs",
]
